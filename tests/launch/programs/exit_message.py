"""sys.exit with a message: exit status 1, the message on stderr (as python does)."""

import sys

sys.exit("no can do")
