"""What a model process may see and use: a scrubbed environment and resource limits.

Participant code is untrusted. It gets only what a Python process needs (an allow-list,
never a deny-list: a new secret variable in the engine's environment must not leak by
default) and address-space, open-file and process limits, set by ``confine.py`` before
the server is exec'd.
"""

from __future__ import annotations

import os
import resource
import site
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import crunch_engine

PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
"""The only variables copied from the orchestrator's environment (when set)."""

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
CONFINE_SCRIPT = Path(__file__).with_name("confine.py")


def engine_root() -> Path:
    """The folder holding the ``crunch_engine`` package (a checkout or site-packages)."""
    return Path(crunch_engine.__file__).resolve().parent.parent


def engine_site_dirs() -> list[Path]:
    """Site-packages of the interpreter running the engine (what its imports need)."""
    dirs = [Path(p) for p in site.getsitepackages()]
    return [d for d in dirs if d.is_dir()]


def engine_pythonpath() -> list[str]:
    """PYTHONPATH entries needed to import the engine: its root unless already a site dir."""
    root = engine_root()
    site_dirs = {d.resolve() for d in engine_site_dirs()}
    return [] if root in site_dirs else [str(root)]


def scrubbed_environment(
    workdir: Path,
    *,
    parent: Mapping[str, str] | None = None,
    pythonpath: list[str] | None = None,
) -> dict[str, str]:
    """The whole environment of a model process: allow-listed variables only.

    HOME and TMPDIR point inside the model's own working directory, so tools that write
    caches (pip, matplotlib, HuggingFace...) stay out of the operator's home.
    """
    source = os.environ if parent is None else parent
    env = {key: source[key] for key in PASSED_THROUGH if source.get(key)}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(workdir)
    env["TMPDIR"] = str(tmp)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # glibc reserves up to 64 MB of address space per thread arena; with an RLIMIT_AS
    # a threaded gRPC server would hit the limit on reservations it never uses.
    env["MALLOC_ARENA_MAX"] = "2"
    entries = engine_pythonpath() if pythonpath is None else pythonpath
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """Per-process limits; 0 means none. Root ignores RLIMIT_NPROC (the kernel's rule)."""

    memory_mb: int = 0
    open_files: int = 0
    processes: int = 0

    def pairs(self) -> list[tuple[int, int]]:
        """(resource, value) pairs to set; ``confine.py`` caps them at the hard limits."""
        out: list[tuple[int, int]] = []
        if self.memory_mb > 0:
            out.append((resource.RLIMIT_AS, self.memory_mb * 1024 * 1024))
        if self.open_files > 0:
            out.append((resource.RLIMIT_NOFILE, self.open_files))
        if self.processes > 0 and hasattr(resource, "RLIMIT_NPROC"):
            out.append((resource.RLIMIT_NPROC, self.processes))
        return out


def confined_argv(
    limits: ResourceLimits, command: list[str], *, pids_cgroup: Path | None = None
) -> list[str]:
    """``command`` behind the ``confine`` script, which sets the limits (and joins a
    pids cgroup capped at ``limits.processes``, when given) and the parent-death signal
    in its own process and then execs ``command``."""
    wrapper = [sys.executable, "-S", str(CONFINE_SCRIPT)]
    for kind, value in limits.pairs():
        wrapper += ["--limit", f"{kind}={value}"]
    if pids_cgroup is not None and limits.processes > 0:
        wrapper += ["--pids-cgroup", str(pids_cgroup), "--pids-max", str(limits.processes)]
    return [*wrapper, "--parent-pid", str(os.getpid()), "--", *command]
