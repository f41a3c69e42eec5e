"""Start a long-lived child process and exit 0: the launcher must not leave the child running."""

import subprocess

subprocess.Popen(["sleep", "60"])
print("started a child")
