"""Every rank prints what it read from stdin."""

import os
import sys

print(f"rank {os.environ.get('SHOAL_RANK')} read {sys.stdin.read()!r}")
