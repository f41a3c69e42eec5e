"""Engines by URL, and the schema brought up to date with alembic from code.

SQLite (the default, a file under the data folder) runs in WAL mode with a busy
timeout, so ``shoal master token create`` can write while a master runs.
PostgreSQL works by URL (``postgresql+psycopg://user:pw@host/db``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from shoal.errors import ConfigurationError

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a clear :class:`ConfigurationError` for a bad one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"--db {url!r} is not a database URL; use e.g. "
                                 "sqlite:////path/cluster.db or "
                                 "postgresql+psycopg://user:password@host/db") from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(f"cannot use the database {parsed.render_as_string()}: "
                                 f"{exc}; install its driver (e.g. pip install "
                                 "'psycopg[binary]')") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")      # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")    # safe with WAL, much faster commits
    cursor.execute("PRAGMA foreign_keys=ON")       # for ON DELETE CASCADE
    cursor.close()


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine`` (creates the schema on a new database)."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing new
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> sessionmaker[Session]:
    """Engine for ``url``, migrated, as a session factory."""
    engine = make_engine(url)
    try:
        migrate(engine)
    except Exception as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"cannot open the database "
                                 f"{engine.url.render_as_string()}: {exc}") from None
    return sessionmaker(engine, expire_on_commit=False)
