import json
import sys

for line in sys.stdin:
    if json.loads(line)["type"] == "act":
        print(json.dumps({"action": 1}), flush=True)
        print(json.dumps({"action": 2}), flush=True)  # one line too many
