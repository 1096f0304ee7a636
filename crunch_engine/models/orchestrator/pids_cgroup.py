"""A per-model pids cgroup: a hard cap on how many processes one model may have.

RLIMIT_NPROC counts every process of the user (all models share one count) and the
kernel ignores it for root, so a fork bomb in a model run by root would take the
machine. Where a writable pids controller exists (Linux; cgroup v1 ``pids`` hierarchy
or cgroup v2 with the ``pids`` controller), each model process joins its own cgroup
with ``pids.max`` set before its code starts (see ``confine.py``), and everything left
in that cgroup is killed when the model stops, even processes that left its group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
NAMESPACE = "crunch-models"


def _v1_base(root: Path) -> Path | None:
    base = root / "pids"
    return base if (base / "cgroup.procs").exists() else None


def _v2_base(root: Path) -> Path | None:
    for base in (root, root / "unified"):
        controllers = base / "cgroup.controllers"
        with contextlib.suppress(OSError):
            if "pids" in controllers.read_text().split():
                return base
    return None


@dataclass(frozen=True, slots=True)
class PidsCgroups:
    """Where model cgroups are created (``<hierarchy>/crunch-models/<name>``)."""

    parent: Path

    @classmethod
    def detect(cls, root: Path = CGROUP_ROOT, namespace: str = NAMESPACE) -> PidsCgroups | None:
        """A usable hierarchy, or None (not Linux, not permitted, no pids controller)."""
        for base, v2 in ((_v1_base(root), False), (_v2_base(root), True)):
            if base is None:
                continue
            parent = base / namespace
            try:
                parent.mkdir(exist_ok=True)
                if v2:  # children of ``parent`` get the pids controller
                    (parent / "cgroup.subtree_control").write_text("+pids")
                probe = parent / f"probe-{os.getpid()}"
                probe.mkdir(exist_ok=True)
                usable = (probe / "pids.max").exists()
                probe.rmdir()
            except OSError as error:
                logger.debug("pids cgroup at %s not usable: %s", base, error)
                continue
            if usable:
                return cls(parent)
        return None

    def path_for(self, name: str) -> Path:
        return self.parent / name

    def remove(self, name: str, timeout: float = 3.0) -> None:
        """Kill whatever is left in the model's cgroup, then remove it."""
        path = self.path_for(name)
        deadline = time.monotonic() + timeout
        while path.exists():
            for pid in _members(path):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            try:
                path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:  # EBUSY until the killed processes are reaped
                if time.monotonic() > deadline:
                    logger.warning("cannot remove cgroup %s: %s", path, error)
                    return
                time.sleep(0.05)


def _members(path: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    return []
