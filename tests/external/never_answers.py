import sys

for line in sys.stdin:
    pass  # reads everything, answers nothing
