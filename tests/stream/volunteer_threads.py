"""Many volunteers in one process, each on its own WebSocket (a thread each): how the tree
tests get dozens of volunteers on a 2-core machine without paying a Python start-up each.

    python volunteer_threads.py URL COUNT NAME-PREFIX

Each runs `shoal volunteer URL` (shoal.stream.volunteer.serve): it follows redirects to
relays, comes back to URL when its connection ends, and leaves when URL no longer answers.
"""

from __future__ import annotations

import sys
import threading
import traceback

from shoal.stream.volunteer import serve


def main() -> int:
    url, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    failed: list[str] = []

    def one(name: str) -> None:
        try:
            serve(url, name=name, capacity=1 << 20)
        except Exception:
            failed.append(f"{name}: {traceback.format_exc()}")

    threads = [threading.Thread(target=one, args=(f"{prefix}{i}",), name=f"{prefix}{i}")
               for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for text in failed:
        sys.stderr.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
