"""`contactcenter staffing` as a planner runs it: a real process, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

COMMAND = [sys.executable, "-m", "app.cli", "staffing"]
HUNDRED_CALLS = ["--calls", "100", "--aht", "180", "--target", "20", "--sl", "0.8"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_table_marks_14_agents_for_the_issues_example() -> None:
    result = _run(*HUNDRED_CALLS)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line for line in result.stdout.splitlines() if line[:7].strip().isdigit()
    }
    assert "needed" in rows["14"]
    assert "88.8%" in rows["14"]
    assert "79.6%" in rows["13"]
    assert "Erlang C" in result.stdout
    assert "10.00 Erlangs" in result.stdout


def test_json_has_the_figures_and_the_counts_around() -> None:
    result = _run(*HUNDRED_CALLS, "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["agents"] == 14
    assert plan["model"] == "erlang_c"
    assert round(plan["service_level"], 3) == 0.888
    assert plan["abandon_rate"] is None  # Erlang C does not model hanging up
    assert plan["occupancy"] == pytest.approx(10 / 14)
    assert plan["asa_s"] > 0
    assert [row["agents"] for row in plan["around"]] == [11, 12, 13, 14, 15, 16]


def test_patience_plans_with_erlang_a() -> None:
    result = _run(*HUNDRED_CALLS, "--patience", "120", "--max-abandon", "0.03", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["model"] == "erlang_a"
    assert plan["abandon_rate"] <= 0.03
    assert plan["service_level"] >= 0.8
    below = next(row for row in plan["around"] if row["agents"] == plan["agents"] - 1)
    assert below["abandon_rate"] > 0.03 or below["service_level"] < 0.8


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--calls", "0"),
        ("--calls", "lots"),
        ("--calls", "2000000"),
        ("--interval", "10"),
        ("--aht", "-5"),
        ("--target", "nan"),
        ("--sl", "80"),
        ("--patience", "0"),
        ("--max-abandon", "1.5"),
    ],
)
def test_a_bad_option_is_named_without_a_traceback(option: str, value: str) -> None:
    options = dict(zip(HUNDRED_CALLS[::2], HUNDRED_CALLS[1::2], strict=True))
    options |= {"--patience": "60", option: value}  # --patience lets --max-abandon be read
    result = _run(*(word for pair in options.items() for word in pair))
    assert result.returncode == 2
    assert f"argument {option}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_max_abandon_needs_patience() -> None:
    result = _run(*HUNDRED_CALLS, "--max-abandon", "0.05")
    assert result.returncode == 2
    assert "--max-abandon" in result.stderr
    assert "--patience" in result.stderr


def test_a_load_beyond_the_bound_is_refused_in_one_line() -> None:
    result = _run(
        "--calls", "1000000", "--interval", "60", "--aht", "600", "--target", "20", "--sl", "0.8"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: more than 100,000 agents would be needed"
