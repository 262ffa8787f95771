"""A complete external agent for `icrl-bench evaluate --agent-cmd "python examples/random_agent.py"`.

It speaks the JSON-lines protocol (see icrl_bench/protocol/external.py): it reads one message per line and
answers only "act" requests, with {"action": a}.
"""

import json
import random
import sys

rng = random.Random(0)
for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "begin_trial":
        rng = random.Random(message["info"]["seed"])
    elif message["type"] == "act":
        print(json.dumps({"action": rng.randrange(4)}), flush=True)
    elif message["type"] == "close":
        break
