"""Print, as JSON, what this process sees: rank, size, argv, sys.path[0], __file__."""

import json
import os
import sys

print(json.dumps({
    "rank": os.environ.get("SHOAL_RANK"),
    "size": os.environ.get("SHOAL_SIZE"),
    "job": os.environ.get("SHOAL_JOB_ID"),
    "control": os.environ.get("SHOAL_CONTROL_FD"),
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "greeting": os.environ.get("GREETING"),
    "argv": sys.argv,
    "path0": sys.path[0],
    "file": __file__,
    "name": __name__,
}))
