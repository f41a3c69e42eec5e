"""Run as `-m pkgprog`: print argv, __name__ and rank."""

import json
import os
import sys

print(json.dumps({"argv": sys.argv, "name": __name__, "rank": os.environ.get("SHOAL_RANK"),
                  "path0": sys.path[0]}))
