"""The store's pieces that the API relies on, against a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.cluster.db.engine import open_database
from shoal.cluster.db.models import Job, Pool, Worker, utcnow
from shoal.cluster.db.output import Chunk, OutputStore
from shoal.cluster.master.routes.jobs import complete_utf8
from shoal.errors import ConfigurationError


def test_output_chunks_are_joined_in_order_with_overlaps_cut(tmp_path: Path) -> None:
    sessions = open_database(f"sqlite:///{tmp_path / 'out.db'}")
    with sessions.begin() as session:  # a pool and job to hang the chunks on
        now = utcnow()
        session.add(Worker(id="w", name="w", hostname="h", registered_at=now))
        session.add(Pool(id="p", command=["x"], created_at=now, state="running"))
        session.flush()
        session.add(Job(id="j", pool_id="p", worker_id="w", worker_name="w", created_at=now))
    output = OutputStore(sessions)
    with sessions.begin() as session:
        output.add_in(session, [Chunk("j", "stdout", 0, b"hello "),
                                Chunk("j", "stdout", 6, b"wor"),
                                Chunk("j", "stdout", 4, b"o world"),  # re-sent, overlapping
                                Chunk("j", "stderr", 0, b"!")])
    assert output.read("j", "stdout") == b"hello world"
    assert output.read("j", "stdout", 7) == b"orld"
    assert output.read("j", "stderr") == b"!"
    assert output.lengths("j") == {"stdout": 11, "stderr": 1}


def test_a_utf8_character_cut_at_the_end_is_left_for_the_next_read() -> None:
    text = "é€😀".encode()  # 2, 3 and 4 bytes
    assert complete_utf8(text) == len(text)
    assert complete_utf8(text[:-1]) == 5 and complete_utf8(text[:-3]) == 5
    assert complete_utf8(text[:4]) == 2 and complete_utf8(b"abc") == 3
    assert complete_utf8(b"\xff\xfe") == 2  # not UTF-8: nothing to wait for


def test_a_bad_database_url_is_one_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="not a database URL"):
        open_database("not a url")
    with pytest.raises(ConfigurationError, match="driver"):
        open_database("nosuchdb://x/y")


def test_the_migrations_build_exactly_the_models_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shoal.cluster.db.models import Base

    sessions = open_database(f"sqlite:///{tmp_path / 'schema.db'}")
    open_database(f"sqlite:///{tmp_path / 'schema.db'}")  # a second start changes nothing
    with sessions.kw["bind"].connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == "0003"  # the newest revision
