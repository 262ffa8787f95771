"""The leaderboard: submissions, their validation and verification, and the published board."""
