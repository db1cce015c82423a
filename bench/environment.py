"""What the benchmark runs on: PostgreSQL, the server process, the machine, and CPU use."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil

from app.core.embedded import EmbeddedPostgres, create_database_if_missing

PROJECT = Path(__file__).resolve().parents[1]
DATABASE = "bench"
BASELINE_DATABASE = "bench_baseline"


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


class Database:
    """A fresh `bench` database (and a scratch one for the baseline) on some PostgreSQL.

    Embedded (the default): a new server in a temporary folder, deleted when stopped. With
    $DATABASE_URL: fresh databases with a run-specific name on that server, dropped at the end.
    """

    def __init__(self) -> None:
        self._embedded: EmbeddedPostgres | None = None
        self._folder: Path | None = None
        self._external_admin: str | None = None
        self.url = ""  # postgresql+asyncpg://..., for the server
        self.baseline_dsn = ""  # postgresql://..., for the bare asyncpg loop
        self.dsn = ""  # postgresql://... of the bench database, for the checks
        self.embedded = False
        self.postmaster_pid: int | None = None

    def start(self) -> None:
        given = os.environ.get("DATABASE_URL")
        if given:
            self._start_external(given)
        else:
            self._start_embedded()
        self.dsn = asyncpg_dsn(self.url)

    def _start_embedded(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="cc-bench-"))
        self._embedded = EmbeddedPostgres(self._folder / "pgdata", delete_on_stop=True)
        self.embedded = True
        self.url = self._embedded.ensure_database(DATABASE)
        self.baseline_dsn = asyncpg_dsn(self._embedded.ensure_database(BASELINE_DATABASE))
        pid_file = self._folder / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.postmaster_pid = int(pid_file.read_text().splitlines()[0])

    def _start_external(self, given: str) -> None:
        base = asyncpg_dsn(given.replace("postgres://", "postgresql://", 1))
        stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S")
        names = (f"bench_{stamp}_{os.getpid()}", f"bench_baseline_{stamp}_{os.getpid()}")
        self._external_admin = base
        for name in names:
            asyncio.run(create_database_if_missing(base, name))
        self._names = names
        self.url = _with_database(base, names[0]).replace("postgresql://", "postgresql+asyncpg://")
        self.baseline_dsn = _with_database(base, names[1])

    def stop(self) -> None:
        if self._embedded is not None:
            with contextlib.suppress(Exception):
                self._embedded.stop()
            self._embedded = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._external_admin is not None:
            with contextlib.suppress(Exception):
                asyncio.run(_drop(self._external_admin, self._names))
            self._external_admin = None


async def _drop(admin_dsn: str, names: tuple[str, ...]) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """The real server as a subprocess (`python -m app.cli serve`), its output in a log file."""

    database_url: str
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="cc-bench-server-", suffix=".log")[1])
    )
    extra_env: dict[str, str] = field(default_factory=dict)  # the telephony settings

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            CC_PASSWORD_HASHING="fast",  # noqa: S106 - a setting, not a password
            CC_LOAD_DEMO="false",
            CC_LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "app.cli", "serve", "--no-demo"),
            *("--port", str(self.port), "--workers", str(self.workers)),
        ]

    def start(self) -> None:
        command = self.command()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops it in order
            )

    async def wait_healthy(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.base_url, trust_env=False) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("/health", timeout=2.0)
                    if response.status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become healthy:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def create_admin(self, username: str, password: str) -> None:
        command = [
            sys.executable,
            "-m",
            "app.cli",
            "create-user",
            username,
            "--role",
            "admin",
            "--password-stdin",
        ]
        done = subprocess.run(
            command,
            cwd=PROJECT,
            env=self.env(),
            input=password.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"create-user failed:\n{output}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def errors_logged(self) -> list[str]:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return [line for line in text if "error" in line.lower() or "Traceback" in line]
        return []


def machine(postgres_version: str) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load1, load5, load15 = os.getloadavg()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
    }


def _cpu_seconds(process: psutil.Process, *, with_reaped_children: bool = False) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        total = times.user + times.system
        if with_reaped_children:
            total += times.children_user + times.children_system
        return float(total)
    return 0.0


class CpuMeter:
    """CPU seconds used by the server, PostgreSQL, this process, and the whole machine."""

    def __init__(self, server_pid: int | None, postmaster_pid: int | None) -> None:
        self._server = psutil.Process(server_pid) if server_pid else None
        self._postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None
        self._me = psutil.Process()
        self._backends: dict[int, psutil.Process] = {}
        self._workers: dict[int, psutil.Process] = {}

    def snapshot(self) -> dict[str, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        snap = {
            "wall": time.monotonic(),
            "machine_busy": float(sum(times) - idle),
            "bench": _cpu_seconds(self._me),
            "server": self._server_seconds(),
            "postgres": 0.0,
        }
        if self._postmaster is not None:
            total = _cpu_seconds(self._postmaster, with_reaped_children=True)
            with contextlib.suppress(psutil.Error):
                for child in self._postmaster.children():
                    backend = self._backends.setdefault(child.pid, child)
                    total += _cpu_seconds(backend)
            snap["postgres"] = total
        return snap

    def _server_seconds(self) -> float:
        """The server process and its workers (`serve --workers`), if any."""
        if self._server is None:
            return 0.0
        total = _cpu_seconds(self._server)
        with contextlib.suppress(psutil.Error):
            for child in self._server.children(recursive=True):
                total += _cpu_seconds(self._workers.setdefault(child.pid, child))
        return total

    @staticmethod
    def usage(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Each part's share of one core over the interval, in percent (200% = two cores)."""
        wall = max(after["wall"] - before["wall"], 1e-9)
        parts = {key: (after[key] - before[key]) / wall * 100 for key in after if key != "wall"}
        parts["other"] = (
            parts["machine_busy"] - parts["bench"] - parts["server"] - parts["postgres"]
        )
        return {key: round(value, 1) for key, value in parts.items()}
