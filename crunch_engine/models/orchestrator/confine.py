"""Apply resource limits and the parent-death signal, then exec the model server.

Run as a script (``python -S confine.py --limit 9=1073741824 --parent-pid 42 -- argv...``)
so it needs only the standard library. Doing this in a process of its own, instead of a
``preexec_fn`` between fork and exec, matters: the orchestrator has gRPC threads, and
running Python code in a child forked from a threaded process can crash it (seen as
SIGSEGV "during startup"). Limits and PR_SET_PDEATHSIG survive ``execv``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
EXIT_CONFINE_FAILED = 127


def _capped(kind: int, value: int) -> tuple[int, int]:
    """Never raise a hard limit (that needs privileges); lower it to ``value`` instead."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return value, value


def _set_parent_death_signal() -> None:
    """Linux: the kernel SIGKILLs us if the orchestrator dies (even when SIGKILLed)."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def join_pids_cgroup(path: str, pids_max: int) -> None:
    """Create the model's pids cgroup, cap it, and move this process into it."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "pids.max"), "w") as handle:
        handle.write(str(pids_max))
    with open(os.path.join(path, "cgroup.procs"), "w") as handle:
        handle.write(str(os.getpid()))


def parse(argv: list[str]) -> tuple[list[tuple[int, int]], int | None, list[str], dict[str, str]]:
    """(limits, parent pid, command, options) from ``--limit K=V``... ``--parent-pid P``
    ``--pids-cgroup DIR --pids-max N`` ``--`` cmd."""
    limits: list[tuple[int, int]] = []
    parent: int | None = None
    options: dict[str, str] = {}
    index = 0
    while index < len(argv) and argv[index] != "--":
        flag = argv[index]
        if index + 1 >= len(argv):
            raise ValueError(f"{flag} needs a value")
        value = argv[index + 1]
        if flag == "--limit":
            kind, _, amount = value.partition("=")
            limits.append((int(kind), int(amount)))
        elif flag == "--parent-pid":
            parent = int(value)
        elif flag in ("--pids-cgroup", "--pids-max"):
            options[flag[2:]] = value
        else:
            raise ValueError(f"unknown option {flag!r}")
        index += 2
    command = argv[index + 1 :]
    if not command:
        raise ValueError("no command after '--'")
    return limits, parent, command, options


def main(argv: list[str]) -> int:
    try:
        limits, parent, command, options = parse(argv)
        for kind, value in limits:
            resource.setrlimit(kind, _capped(kind, value))
        if "pids-cgroup" in options:
            join_pids_cgroup(options["pids-cgroup"], int(options.get("pids-max", "64")))
        _set_parent_death_signal()
    except (ValueError, OSError) as error:
        print(f"confine: {error}", file=sys.stderr)
        return EXIT_CONFINE_FAILED
    if parent is not None and os.getppid() != parent:
        return EXIT_CONFINE_FAILED  # the orchestrator died before the signal was armed
    try:
        os.execv(command[0], command)
    except OSError as error:
        print(f"confine: cannot run {command[0]}: {error}", file=sys.stderr)
    return EXIT_CONFINE_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
