"""The folder where the workers of `serve --workers N` keep their metrics for Prometheus.

The client library's multiprocess mode: each process's counters, histograms and gauges live in
files of its own in one folder, named by PROMETHEUS_MULTIPROC_DIR, which must be set before
the library is imported (it picks how to keep values then); a scrape sums the files. So
`contactcenter serve` prepares it before it starts the workers. This module imports nothing of
the library for that reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
FOLDER = "prometheus"  # under the data folder (CC_DATA_DIR)

# The files of gauges summed over live processes only (the open websockets): one per process.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def prepare(data_dir: Path, workers: int) -> Path | None:
    """With several workers: an empty folder for their metrics under `data_dir`, named in the
    environment the workers inherit; returns it. Emptied at every start: the files of a run
    before would add their counts, and the pids in their names may be reused. With one
    worker: the variable is removed (the process keeps its metrics in memory); returns None."""
    if workers <= 1:
        os.environ.pop(MULTIPROC_DIR, None)
        return None
    folder = data_dir / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_DIR] = str(folder)
    return folder


def forget_dead_workers(folder: str) -> None:
    """Removes the live-only gauge files of processes that are gone (a worker that crashed and
    was replaced): its sockets closed with it. Its counters stay, as counts do."""
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.fullmatch(os.path.basename(path))
        if found is not None and not _alive(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another scrape removed it
                os.remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # (another user's process reuses the pid)
        return False
    return True
