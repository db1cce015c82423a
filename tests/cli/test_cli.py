"""The `contactcenter` command as a user runs it: real processes, real sockets, real signals."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from app.core import security
from app.core.hub import asyncpg_dsn
from tests.support import free_port

COMMAND = [sys.executable, "-m", "app.cli"]
PASSWORD_LINE = re.compile(r"password=(\S+)\s+username=(\S+)")


def _run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command, with `stdin` as its standard input (a pipe: not a terminal)."""
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_explains_every_command() -> None:
    result = _run("--help", env=dict(os.environ))
    assert result.returncode == 0
    for name in ("serve", "db", "demo", "create-user"):
        assert name in result.stdout
    for command in (["serve"], ["db"], ["db", "downgrade"], ["demo"], ["create-user"]):
        assert _run(*command, "--help", env=dict(os.environ)).returncode == 0


class Service:
    """`contactcenter serve` in its own process on an embedded PostgreSQL in `data_dir` (or on
    the DATABASE_URL among `settings`, the environment variables given besides)."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        log_path: Path,
        *,
        workers: int = 1,
        settings: dict[str, str] | None = None,
    ) -> None:
        environment = {
            k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("CC_")
        }
        environment.update(CC_DATA_DIR=str(data_dir), CC_PORT=str(port), CC_WORKERS=str(workers))
        environment.update(settings or {})
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("a")
        self.process = subprocess.Popen(
            [*COMMAND, "serve"], env=environment, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"service not healthy in time:\n{self.log_path.read_text()}")

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self._log.close()
        return code

    def passwords(self) -> dict[str, str]:
        found = PASSWORD_LINE.findall(self.log_path.read_text())
        return {username: password for password, username in found}


def _postgres_running_in(pgdata: Path) -> bool:
    for process in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            return True
    return False


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    pgdata = folder / "postgres"
    if _postgres_running_in(pgdata):  # a failed test must not leave a server behind
        subprocess.run(["pkill", "-f", f"-D {pgdata}"], check=False)


def _login(base_url: str, username: str, password: str) -> int:
    response = httpx.post(
        f"{base_url}/v1/auth/login", json={"username": username, "password": password}, timeout=10
    )
    return response.status_code


def test_serve_runs_on_embedded_postgres_stops_it_and_finds_the_data_again(
    data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    first = Service(data_dir, free_port(), log)
    first.wait_healthy()
    passwords = first.passwords()
    assert set(passwords) >= {"admin", "super", "mei", "tom", "ana", "raj"}
    assert _login(first.base_url, "admin", passwords["admin"]) == 200

    assert first.stop(signal.SIGTERM) in (0, 128 + signal.SIGTERM)
    assert not _postgres_running_in(data_dir / "postgres"), "SIGTERM must stop the embedded server"

    second = Service(data_dir, free_port(), tmp_path / "second.log")
    second.wait_healthy()
    assert second.passwords() == {}, "the demo loads only into an empty database"
    assert _login(second.base_url, "admin", passwords["admin"]) == 200
    second.stop(signal.SIGINT)
    assert not _postgres_running_in(data_dir / "postgres"), "Ctrl-C must stop the embedded server"


def test_serve_with_two_workers_runs_two_replicas_and_sigterm_stops_them_all(
    data_dir: Path, tmp_path: Path
) -> None:
    service = Service(data_dir, free_port(), tmp_path / "workers.log", workers=2)
    try:
        service.wait_healthy()
        workers = psutil.Process(service.process.pid).children(recursive=True)
        apps = [w for w in workers if "spawn_main" in " ".join(w.cmdline())]
        assert len(apps) == 2, [w.cmdline() for w in workers]
        passwords = service.passwords()
        assert _login(service.base_url, "admin", passwords["admin"]) == 200
    finally:
        code = service.stop(signal.SIGTERM)  # also when an assertion failed: leave nothing running
    assert code in (0, 128 + signal.SIGTERM)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in apps)
    assert not _postgres_running_in(data_dir / "postgres"), "SIGTERM must stop the embedded server"


def test_create_user_and_demo_on_a_given_database(database_url: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url}
    created = _run("create-user", "boss", "--role", "supervisor", env=environment)
    assert created.returncode == 0, created.stderr
    assert "password (shown once):" in created.stdout, "no terminal, no password: one is made"

    again = _run("create-user", "BOSS", "--role", "admin", env=environment)
    assert again.returncode != 0
    assert "already taken" in again.stderr

    assert "demo loaded" in _run("demo", env=environment).stdout
    assert "demo already present" in _run("demo", env=environment).stdout


def test_db_commands_move_the_schema(database_url: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url}
    assert _run("db", "check", env=environment).returncode == 0
    assert _run("db", "downgrade", "base", env=environment).returncode == 0
    assert _run("db", "check", env=environment).returncode != 0
    assert _run("db", "upgrade", env=environment).returncode == 0
    assert _run("db", "check", env=environment).returncode == 0


def _password_hash(database_url: str, username: str) -> str | None:
    async def read() -> str | None:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            found: str | None = await connection.fetchval(
                "SELECT password_hash FROM users WHERE username = $1", username
            )
            return found
        finally:
            await connection.close()

    return asyncio.run(read())


CHOSEN = "a long pass phrase"


def test_create_user_reads_the_password_from_standard_input(database_url: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url}

    created = _run(
        "create-user",
        "boss",
        "--role",
        "supervisor",
        "--password-stdin",
        env=environment,
        stdin=f"{CHOSEN}\n",
    )

    assert created.returncode == 0, created.stderr
    assert created.stdout == "created supervisor 'boss'\n"
    stored = _password_hash(database_url, "boss")
    assert stored is not None
    assert security.verify_password(stored, CHOSEN)


@pytest.mark.parametrize(
    ("arguments", "stdin", "said"),
    [
        (["--password", CHOSEN], "", "--password is not taken: a password on the command line"),
        (["--password=" + CHOSEN], "", "Pipe it in with --password-stdin"),
        (["--password-stdin"], "", "--password-stdin read no password"),
        (["--password-stdin"], "short\n", "password: String should have at least 8 characters"),
    ],
)
def test_create_user_refuses_a_password_it_should_not_take_in_one_line(
    database_url: str, arguments: list[str], stdin: str, said: str
) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url}

    refused = _run("create-user", "boss", *arguments, env=environment, stdin=stdin)

    assert refused.returncode != 0
    assert [line for line in refused.stderr.splitlines() if line] == [refused.stderr.strip()]
    assert said in refused.stderr
    assert CHOSEN not in refused.stderr + refused.stdout
    assert "short" not in refused.stderr.replace(said, "")
    assert _password_hash(database_url, "boss") is None


def _on_a_terminal(command: list[str], environment: dict[str, str], typed: list[str]) -> str:
    """Run `command` with a pseudo-terminal as its controlling terminal, typing each of `typed`
    once a prompt (a line ending in ": ") has appeared; returns what it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command,
        env=environment,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        # A session of its own, and the terminal made its controlling one: getpass opens /dev/tty.
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(follower)
    shown = b""
    pending = list(typed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other side closed: the command has ended
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.rstrip(b" ").endswith(b":"):
                os.write(leader, pending.pop(0).encode() + b"\n")
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    assert process.returncode == 0, shown
    return shown.decode(errors="replace")


def test_create_user_asks_for_the_password_on_a_terminal(database_url: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database_url}

    shown = _on_a_terminal(
        [*COMMAND, "create-user", "sam", "--role", "agent"], environment, [CHOSEN, CHOSEN]
    )

    assert "Password (leave empty to generate one): " in shown
    assert "The same again: " in shown
    assert CHOSEN not in shown, "typed without echo, and never printed"
    stored = _password_hash(database_url, "sam")
    assert stored is not None
    assert security.verify_password(stored, CHOSEN)


def test_production_never_loads_the_demo_unless_asked(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    production = {
        "DATABASE_URL": database_url,
        "CC_ENVIRONMENT": "production",
        "CC_SECRET_KEY": "a-production-secret-key-for-this-test",
    }
    plain = Service(data_dir, free_port(), tmp_path / "plain.log", settings=production)
    try:
        plain.wait_healthy()
        assert plain.passwords() == {}
        assert _password_hash(database_url, "admin") is None, "the database stayed empty"
    finally:
        plain.stop(signal.SIGTERM)

    asked = Service(
        data_dir,
        free_port(),
        tmp_path / "asked.log",
        settings={**production, "CC_LOAD_DEMO": "true"},
    )
    try:
        asked.wait_healthy()
        assert set(asked.passwords()) >= {"admin", "super", "mei"}
    finally:
        asked.stop(signal.SIGTERM)
