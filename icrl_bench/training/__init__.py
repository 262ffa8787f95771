"""Training transformers to learn in context: learning-history data, sequence formats, DQN and distillation."""
