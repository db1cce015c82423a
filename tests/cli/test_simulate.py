"""`contactcenter simulate` as a manager runs it: a real process, its output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

COMMAND = [sys.executable, "-m", "app.cli", "simulate"]
# The example on a short run: 100 calls per 30 minutes, AHT 180 s, 14 agents.
EXAMPLE = ["--calls", "100", "--interval", "1800", "--aht", "180", "--target", "20"]
TIERS = "platinum=0.1,gold=0.2,iron=0.4,lead=0.3"


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    # No DATABASE_URL and a data folder nowhere: the command must not need either.
    env = {**os.environ, "CC_DATA_DIR": "/nonexistent/cc-data"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_json_gives_the_figures_overall_and_per_tier() -> None:
    result = _simulate(
        *EXAMPLE, "--agents", "14", "--arrivals", "5000", "--tiers", TIERS, "--seed", "3", "--json"
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["agents"] == 14
    assert 0.7 < figures["service_level"] <= 1
    assert figures["asa_s"] > 0
    assert 0.6 < figures["occupancy"] < 0.8
    assert figures["abandon_rate"] == 0
    assert set(figures["by_tier"]) == {"platinum", "gold", "iron", "lead"}
    assert sum(tier["offered"] for tier in figures["by_tier"].values()) == 5000
    assert figures["tier_weights"] == {"platinum": 30, "gold": 20, "iron": 10, "lead": 0}


def test_tier_weights_and_patience_change_what_the_run_tells() -> None:
    common = [*EXAMPLE, "--agents", "12", "--arrivals", "5000", "--tiers", TIERS, "--json"]
    flat = json.loads(_simulate(*common, "--tier-weights", "platinum=0,gold=0,iron=0").stdout)
    assert flat["tier_weights"] == {"platinum": 0, "gold": 0, "iron": 0, "lead": 0}
    steep = json.loads(_simulate(*common, "--tier-weights", "platinum=300").stdout)
    assert steep["by_tier"]["platinum"]["asa_s"] < flat["by_tier"]["platinum"]["asa_s"]
    impatient = json.loads(_simulate(*common, "--patience", "60").stdout)
    assert impatient["abandoned"] > 0
    assert 0 < impatient["abandon_rate"] < 0.2


def test_the_table_names_each_tier_and_skill() -> None:
    result = _simulate(
        *EXAMPLE,
        "--agents",
        "billing=7,tech=7,billing+tech=2",
        "--skills",
        "billing=0.5,tech=0.5",
        "--tiers",
        TIERS,
        "--arrivals",
        "3000",
        "--runs",
        "2",
    )
    assert result.returncode == 0, result.stderr
    for name in ("all", "platinum", "lead", "billing", "tech", "occupancy", "16 agents"):
        assert name in result.stdout
    assert "2 run(s) x 3,000 calls" in result.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--calls", "0", "--aht", "180", "--agents", "14"], "--calls"),
        (["--calls", "ten", "--aht", "180", "--agents", "14"], "--calls"),
        (["--calls", "100", "--aht", "-3", "--agents", "14"], "--aht"),
        (["--calls", "100", "--aht", "180", "--agents", "0"], "--agents"),
        (["--calls", "100", "--aht", "180", "--agents", "10"], "--agents"),  # cannot keep up
        (["--calls", "100", "--aht", "180", "--agents", "tech=2"], "--agents"),  # no tech calls
        (["--calls", "100", "--aht", "180", "--agents", "14", "--patience", "0"], "--patience"),
        (["--calls", "100", "--aht", "180", "--agents", "14", "--tiers", "diamond=1"], "--tiers"),
        (["--calls", "100", "--aht", "180", "--agents", "14", "--tiers", "gold"], "--tiers"),
        (
            ["--calls", "100", "--aht", "180", "--agents", "14", "--tier-weights", "gold=-1"],
            "--tier-weights",
        ),
        (["--calls", "100", "--aht", "180", "--agents", "14", "--arrivals", "0"], "--arrivals"),
        (["--calls", "100", "--aht", "180", "--agents", "14", "--runs", "1000"], "--runs"),
        (["--calls", "100", "--aht", "180", "--agents", "14", "--target", "1.5"], "--target"),
        (["--aht", "180", "--agents", "14"], "--calls"),  # missing
    ],
)
def test_a_bad_option_is_named_with_exit_2_and_no_traceback(args: list[str], named: str) -> None:
    result = _simulate(*args)
    assert result.returncode == 2
    assert f"argument {named}" in result.stderr or named in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
