"""Rank 1 sends a large message nobody will read, then fails: the failure must reach the
launcher at once (init must not wait for that send first). Rank 0 would sleep 60 s."""

import time

import shoal


def main():
    if shoal.rank() == 1:
        shoal.send(b"x" * 50_000_000, to=0, subject="never read")
        raise ValueError("rank 1 fails after sending")
    time.sleep(60)


shoal.init(main)
