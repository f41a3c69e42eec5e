"""Job output kept in the database as chunks at byte offsets.

Writes come in batches (the master's flusher gathers every chunk of a second
into one transaction), so megabytes arriving in tiny pieces cost few commits.
Reads join the chunks from an offset; a chunk that starts before the offset
is cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from shoal.cluster.db.models import OutputChunk

STREAMS = {"stdout": 1, "stderr": 2}


@dataclass(frozen=True)
class Chunk:
    job_id: str
    stream: str
    offset: int
    data: bytes


class OutputStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @staticmethod
    def add_in(session: Session, chunks: Iterable[Chunk]) -> None:
        """Insert chunks within the caller's transaction (one executemany)."""
        rows = [{"job_id": c.job_id, "stream": STREAMS[c.stream], "offset": c.offset,
                 "data": c.data} for c in chunks if c.data]
        if rows:
            session.execute(insert(OutputChunk), rows)

    def lengths(self, job_id: str) -> dict[str, int]:
        """How many bytes of each stream are stored (the end of the last chunk)."""
        ends = {name: 0 for name in STREAMS}
        with self.sessions() as session:
            query = (select(OutputChunk.stream,
                            func.max(OutputChunk.offset + func.length(OutputChunk.data)))
                     .where(OutputChunk.job_id == job_id).group_by(OutputChunk.stream))
            for stream, end in session.execute(query):
                ends[_name(stream)] = int(end or 0)
        return ends

    def read(self, job_id: str, stream: str, offset: int = 0,
             limit: int | None = None) -> bytes:
        """The bytes of ``stream`` from ``offset`` to the end stored so far, or at most
        ``limit`` of them (chunks are read one by one, never all at once)."""
        with self.sessions() as session:
            query = (select(OutputChunk.offset, OutputChunk.data)
                     .where(OutputChunk.job_id == job_id,
                            OutputChunk.stream == STREAMS[stream],
                            OutputChunk.offset + func.length(OutputChunk.data) > offset)
                     .order_by(OutputChunk.offset).execution_options(yield_per=16))
            parts = []
            position = offset
            for start, data in session.execute(query):
                if start + len(data) <= position:
                    continue  # a duplicate already covered
                parts.append(data[max(0, position - start):])
                position = start + len(data)
                if limit is not None and position - offset >= limit:
                    break
            joined = b"".join(parts)
            return joined if limit is None else joined[:limit]


def _name(stream: int) -> str:
    return "stdout" if stream == 1 else "stderr"
