"""Print a line, then sleep a long time: the line must arrive before the rank ends."""

import os
import time

print(f"ready {os.environ.get('SHOAL_RANK')}")
time.sleep(60)
