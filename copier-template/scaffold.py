"""The template's copier task: audit trail, sub-projects and first commits.

Run by copier (``_tasks`` in copier.yml, so ``--trust`` is needed) with the rendered
project as the working directory, after every copy and update:

- copy of the workspace: renders the public challenge (``crunch-<name>/``) and the private
  node (``crunch-node-<name>/``) as their own copier projects, from the same template
  source and version with the same answers, then commits the workspace;
- copy of a challenge or node: ``git init`` and a first commit, so it can be pushed to its
  own remote and ``copier update`` works inside it;
- every step appends one JSON object to the workspace's ``process-log.jsonl`` (or the
  project's own when it is not inside a workspace).

During ``copier update`` copier also renders the old and the new template versions in
temporary folders and runs the tasks there; nothing is done in those.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ANSWERS_FILE = ".copier-answers.yml"
LOG_FILE = "process-log.jsonl"
COPIER_TEMP_PREFIX = "copier._main."
SCAFFOLD_IDENTITY = {
    "GIT_AUTHOR_NAME": "crunch scaffold",
    "GIT_AUTHOR_EMAIL": "scaffold@localhost",
    "GIT_COMMITTER_NAME": "crunch scaffold",
    "GIT_COMMITTER_EMAIL": "scaffold@localhost",
}


def read_answers(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{project / ANSWERS_FILE}: expected a mapping")
    return data


def sub_projects(name: str) -> list[tuple[str, str]]:
    """(repo_kind, folder) of the two repos a workspace holds."""
    return [("challenge", f"crunch-{name}"), ("node", f"crunch-node-{name}")]


def log_path(project: Path, kind: str) -> Path:
    """The workspace's log: its own, or the parent's for a challenge or node inside one."""
    if kind != "workspace" and (project.parent / LOG_FILE).is_file():
        return project.parent / LOG_FILE
    return project / LOG_FILE


def copier_version() -> str:
    try:
        return metadata.version("copier")
    except metadata.PackageNotFoundError:
        return "unknown"


def log_step(project: Path, kind: str, step: str, **details: Any) -> None:
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        "step": step,
        "repo": kind,
        "path": project.name,
        **details,
    }
    with log_path(project, kind).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=False) + "\n")


def git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    probe = subprocess.run(
        ["git", "config", "user.email"], cwd=project, capture_output=True, text=True
    )
    if probe.returncode != 0 or not probe.stdout.strip():
        env.update(SCAFFOLD_IDENTITY)  # no identity configured: commit as the scaffold
    return subprocess.run(
        ["git", *args], cwd=project, env=env, capture_output=True, text=True, check=check
    )


def is_repo_root(project: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=project, capture_output=True, text=True
    )
    return result.returncode == 0 and Path(result.stdout.strip()).resolve() == project.resolve()


def in_work_tree(project: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=project, capture_output=True, text=True
    )
    return result.returncode == 0 and result.stdout.strip() == "true"


def is_copier_temp_render(project: Path) -> bool:
    """True in the folders where ``copier update`` renders the old and new versions."""
    return any(part.startswith(COPIER_TEMP_PREFIX) for part in project.resolve().parts)


def init_and_commit(project: Path, kind: str, message: str) -> None:
    """``git init`` and a first commit; an existing repository (a re-copy) is left alone
    for its owner to review and commit."""
    if is_repo_root(project):
        log_step(project, kind, "git-existing", note="review and commit the changes")
        return
    git(project, "init", "-q")
    log_step(project, kind, "git-init")
    # Logged first: the log is part of the commit, so the project starts clean.
    log_step(project, kind, "git-commit", message=message)
    git(project, "add", "-A")
    result = git(project, "commit", "-q", "--no-verify", "-m", message, check=False)
    if result.returncode != 0 and "nothing to commit" not in result.stdout + result.stderr:
        raise SystemExit(f"git commit failed in {project}:\n{result.stdout}{result.stderr}")


def copy_sub_project(
    workspace: Path, answers: dict[str, Any], kind: str, folder: str, vcs_ref: str
) -> None:
    target = workspace / folder
    if target.exists():
        log_step(workspace, "workspace", "skip-existing", sub_project=folder)
        print(f"{folder}/ exists: run `copier update --trust` inside it instead", file=sys.stderr)
        return
    ref = vcs_ref or str(answers.get("_commit") or "")
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet"]
    if ref:
        command += ["--vcs-ref", ref]
    for key, value in answers.items():
        if key.startswith("_") or key == "repo_kind":
            continue
        command += ["--data", f"{key}={value}"]
    command += ["--data", f"repo_kind={kind}", str(answers["_src_path"]), folder]
    log_step(
        workspace, "workspace", "copy-sub-project", sub_project=folder, repo_kind=kind, ref=ref
    )
    subprocess.run(command, cwd=workspace, check=True)


def original_cwd(project: Path, dst_path: str) -> Path | None:
    """Where copier was started: a folder from which the destination as given (relative)
    leads here; ``$PWD`` first (a shell's working directory), then the project's parents."""
    dst = Path(dst_path) if dst_path else None
    pwd = os.environ.get("PWD")
    if dst is None or dst.is_absolute():
        return Path(pwd) if pwd else None
    target = project.resolve()
    candidates = ([Path(pwd)] if pwd else []) + list(project.parents)
    for candidate in candidates:
        if (candidate / dst).resolve() == target:
            return candidate
    return None


def absolute_source(project: Path, answers: dict[str, Any], dst_path: str) -> str:
    """The template source as an absolute path (URLs unchanged).

    Copier records the source as given; a relative local path would break every later
    ``copier update`` run from elsewhere (and the sub-project copies run from here), so
    it is resolved and written back into the answers file before the first commit.
    """
    source = str(answers.get("_src_path") or "")
    if not source or "://" in source or source.startswith(("gh:", "gl:", "git@")):
        return source
    path = Path(source).expanduser()
    if path.is_absolute():
        return str(path)
    base = original_cwd(project, dst_path)
    if base is None or not (base / path).is_dir():
        raise SystemExit(
            f"the template source {source!r} is a relative path and its folder could not be "
            "found: run copier again with the template's absolute path"
        )
    resolved = str((base / path).resolve())
    answers_file = project / ANSWERS_FILE
    text = answers_file.read_text(encoding="utf-8")
    lines = [
        yaml.safe_dump({"_src_path": resolved}).strip() if line.startswith("_src_path:") else line
        for line in text.splitlines()
    ]
    answers_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    answers["_src_path"] = resolved
    return resolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operation", required=True)
    parser.add_argument("--kind", required=True, choices=["workspace", "challenge", "node"])
    parser.add_argument("--vcs-ref", default="")
    parser.add_argument("--dst-path", default="")
    args = parser.parse_args(argv)

    project = Path.cwd()
    answers = read_answers(project)
    source = str(answers.get("_src_path") or "")
    if args.operation == "copy":
        source = absolute_source(project, answers, args.dst_path)
    commit = str(answers.get("_commit") or "")
    template = {"template": source, "version": commit, "copier": copier_version()}

    if args.operation != "copy":
        # `copier update` (and recopy): record it, only in the real project.
        if is_copier_temp_render(project) or not in_work_tree(project):
            return 0
        log_step(project, args.kind, args.operation, **template)
        return 0

    if args.kind == "workspace":
        log_step(
            project,
            "workspace",
            "copy",
            **template,
            answers={k: v for k, v in answers.items() if not k.startswith("_")},
        )
        for kind, folder in sub_projects(str(answers["name"])):
            copy_sub_project(project, answers, kind, folder, args.vcs_ref)
        init_and_commit(project, "workspace", f"Scaffold workspace from crunch-control {commit}")
        return 0

    log_step(project, args.kind, "copy", **template)
    init_and_commit(project, args.kind, f"Scaffold {args.kind} from crunch-control {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
