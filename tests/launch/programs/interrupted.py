"""Raise KeyboardInterrupt, as a Ctrl-C inside the program would."""

raise KeyboardInterrupt
