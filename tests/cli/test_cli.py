"""The `contactcenter` command as a user runs it: real processes, real sockets, real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import free_port

COMMAND = [sys.executable, "-m", "app.cli"]
PASSWORD_LINE = re.compile(r"password=(\S+)\s+username=(\S+)")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_help_explains_every_command() -> None:
    result = _run("--help", env=dict(os.environ))
    assert result.returncode == 0
    for name in ("serve", "db", "demo", "create-user"):
        assert name in result.stdout
    for command in (["serve"], ["db"], ["db", "downgrade"], ["demo"], ["create-user"]):
        assert _run(*command, "--help", env=dict(os.environ)).returncode == 0


class Service:
    """`contactcenter serve` in its own process on an embedded PostgreSQL in `data_dir`."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, *, workers: int = 1) -> None:
        environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        environment.update(CC_DATA_DIR=str(data_dir), CC_PORT=str(port), CC_WORKERS=str(workers))
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
    assert "password (shown once):" in created.stdout

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
