"""modules_at_start.py's checks from a file that names numpy (so the fork server preloads
it): the checks run first, before this file's own import of numpy."""

import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules_at_start.py"),
               run_name="__main__")

import numpy  # noqa: F401
