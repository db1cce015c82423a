"""A configuration mistake ends `contactcenter` with one line that says what is wrong and how to
fix it: no traceback, no password, a non-zero exit. Each is tried with the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support import free_port

COMMAND = [sys.executable, "-m", "app.cli"]
SECRET = "Tr0ub4dor-and-3"  # the password in every URL here: it must never be printed


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any CC_ setting or DATABASE_URL, and `variables`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CC_") and name != "DATABASE_URL"
    }
    return {**kept, "CC_DATA_DIR": str(tmp_path / "data"), **variables}


def _with(
    url: str, *, username: str | None = None, password: str, database: str | None = None
) -> str:
    """`url` as another user, password or database."""
    parsed = make_url(url)
    changed = parsed.set(
        username=username or parsed.username,
        password=password,
        database=database or parsed.database,
    )
    return changed.render_as_string(hide_password=False)


def _fails_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr, after checking there is nothing else and no password."""
    assert result.returncode != 0, result
    assert SECRET not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def _run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *command],
        env=environment,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]])
def test_an_unreachable_database(tmp_path: Path, command: list[str]) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://cc:{SECRET}@127.0.0.1:{port}/contactcenter"

    line = _fails_in_one_line(_run(command, _environment(tmp_path, DATABASE_URL=url)))

    assert f"cannot reach the database at 127.0.0.1:{port}/contactcenter" in line
    assert "check the host and port in DATABASE_URL" in line


def test_an_unknown_role(tmp_path: Path, database_url: str) -> None:
    url = _with(database_url, username="nobody", password=SECRET)

    line = _fails_in_one_line(_run(["serve"], _environment(tmp_path, DATABASE_URL=url)))

    assert "refused to let user 'nobody' in" in line
    assert 'role "nobody" does not exist' in line
    assert "check the user and password in DATABASE_URL" in line


def test_an_unknown_database(tmp_path: Path, database_url: str) -> None:
    url = _with(database_url, password=SECRET, database="no_such_database")

    line = _fails_in_one_line(_run(["serve"], _environment(tmp_path, DATABASE_URL=url)))

    assert 'database "no_such_database" does not exist' in line
    assert "create it" in line


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"mysql://cc:{SECRET}@db.internal/contactcenter", "is not a postgresql:// URL"),
        (f"postgresql+psycopg://cc:{SECRET}@db.internal/cc", "is not a postgresql:// URL"),
        (f"postgresql://cc:{SECRET}@db.internal:fivefourthreetwo/cc", "cannot be read"),
    ],
)
def test_a_bad_url(tmp_path: Path, url: str, problem: str) -> None:
    line = _fails_in_one_line(_run(["serve"], _environment(tmp_path, DATABASE_URL=url)))

    assert line.startswith("error: DATABASE_URL: ")
    assert problem in line
    assert "cc:***@" in line, "the URL is named, its password masked"
    assert "write it as postgresql://user:password@host:5432/database" in line


def test_production_without_a_secret_key(tmp_path: Path) -> None:
    environment = _environment(tmp_path, CC_ENVIRONMENT="production")

    line = _fails_in_one_line(_run(["serve"], environment))

    assert line.startswith("error: CC_SECRET_KEY must be set in production: ")
    assert "secrets.token_urlsafe" in line


def test_an_unknown_environment(tmp_path: Path) -> None:
    environment = _environment(tmp_path, CC_ENVIRONMENT="prod", CC_SECRET_KEY=SECRET)

    line = _fails_in_one_line(_run(["serve"], environment))

    assert line == (
        "error: CC_ENVIRONMENT='prod' is not valid: input should be 'development', 'test' or"
        " 'production'; fix it in the environment or in .env"
    )


def test_a_relay_password_without_starttls(tmp_path: Path) -> None:
    environment = _environment(
        tmp_path,
        CC_SMTP_RELAY_HOST="smtp.example.net",
        CC_SMTP_RELAY_USERNAME="support@example.com",
        CC_SMTP_RELAY_PASSWORD=SECRET,
        CC_SMTP_RELAY_STARTTLS="false",
    )

    line = _fails_in_one_line(_run(["serve"], environment))

    assert line.startswith("error: CC_SMTP_RELAY_PASSWORD with CC_SMTP_RELAY_STARTTLS=false")
    assert "in the clear" in line
