"""Virtual environments for submissions that ship a requirements.txt.

One venv per distinct requirements file (named by its sha256), built once and shared by
every model with identical requirements. The engine's own packages stay importable
through a ``.pth`` file added *after* pip ran: pip then installs every requirement into
the venv (it cannot see the engine's copies), and at run time the venv's site-packages
come first on sys.path, so the model's pinned versions win over the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from crunch_engine.models.orchestrator.environment import engine_root, engine_site_dirs

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".crunch-venv-complete"
ENGINE_PTH = "zz_crunch_engine.pth"
BUILD_TIMEOUT_SECONDS = 900.0
TAIL_LINES = 25


class VenvBuildError(RuntimeError):
    """The venv could not be built; the message ends with the tail of pip's output."""


def requirements_hash(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _tail(output: bytes, lines: int = TAIL_LINES) -> str:
    text = output.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def _clear(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)


def engine_pth_lines() -> list[str]:
    """Lines of the .pth file: the engine's site dirs (with their own .pth, e.g. an
    editable install) and the engine's root folder."""
    lines = [f"import site; site.addsitedir({str(d)!r})" for d in engine_site_dirs()]
    lines.append(str(engine_root()))
    return lines


class VenvBuilder:
    """Builds and caches venvs under ``root`` (``<data_dir>/venvs``)."""

    def __init__(
        self,
        root: Path,
        *,
        base_python: str = sys.executable,
        pip_args: Sequence[str] = ("--disable-pip-version-check", "--no-input"),
        timeout: float = BUILD_TIMEOUT_SECONDS,
    ) -> None:
        self.root = root
        self.base_python = base_python
        self.pip_args = tuple(pip_args)
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self.builds = 0
        """How many venvs this builder created (the cache works when it stays low)."""

    def path_for(self, requirements: Path) -> Path:
        return self.root / requirements_hash(requirements)

    async def ensure(self, requirements: Path, log: Path | None = None) -> Path:
        """The venv's python for these requirements, building the venv the first time."""
        venv = self.path_for(requirements)
        lock = self._locks.setdefault(venv.name, asyncio.Lock())
        async with lock:
            if (venv / COMPLETE_MARKER).is_file():
                return venv_python(venv)
            await self._build(venv, requirements, log)
            return venv_python(venv)

    async def _build(self, venv: Path, requirements: Path, log: Path | None) -> None:
        await asyncio.to_thread(_clear, venv)  # an interrupted build: start over
        started = time.monotonic()
        logger.info("venv %s: building for %s", venv.name, requirements)
        try:
            await self._run([self.base_python, "-m", "venv", str(venv)], "python -m venv", log)
            copy = venv / "requirements.txt"
            shutil.copyfile(requirements, copy)
            pip = [str(venv_python(venv)), "-m", "pip", "install", *self.pip_args]
            await self._run([*pip, "-r", str(copy)], "pip install -r requirements.txt", log)
            site_packages = await self._site_packages(venv)
            (site_packages / ENGINE_PTH).write_text("\n".join(engine_pth_lines()) + "\n")
            (venv / COMPLETE_MARKER).write_text(f"{requirements_hash(requirements)}\n")
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, venv, True)
            raise
        self.builds += 1
        logger.info("venv %s: built in %.1fs", venv.name, time.monotonic() - started)

    async def _site_packages(self, venv: Path) -> Path:
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        out = await self._run([str(venv_python(venv)), "-c", code], "locate site-packages", None)
        return Path(out.decode().strip())

    async def _run(self, argv: list[str], what: str, log: Path | None) -> bytes:
        env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG")}
        env["HOME"] = str(self.root)
        env["PIP_NO_INPUT"] = "1"
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except BaseException:  # timeout or cancellation (the model was stopped): kill pip
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        if log is not None:
            with log.open("ab") as handle:
                handle.write(f"--- {what}\n".encode() + output)
        if proc.returncode != 0:
            raise VenvBuildError(f"{what} failed (exit {proc.returncode}):\n{_tail(output)}")
        return output
