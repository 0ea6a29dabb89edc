"""The run's scratch directory (cookie jars, curl configs), and the ones killed runs left.

A run removes its directory when it ends, also on Ctrl-C and SIGTERM; after SIGKILL
nothing of it can run. So the directory's name carries the pid of the run that made it
(``bookinfo-labs-<pid>-<random>``), and every run first removes the directories of runs
that are no longer alive.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "bookinfo-labs-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")


def make_run_dir() -> Path:
    """A fresh directory for this run, after removing those of dead runs."""
    remove_stale()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_stale(root: str | Path | None = None) -> list[Path]:
    """Remove the run directories (ours, by owner) whose run is gone; return them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{PREFIX}*"):
        match = _NAME.match(path.name)
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if match is None or _alive(int(match.group(1))):
            continue  # not ours to judge, or still running
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
