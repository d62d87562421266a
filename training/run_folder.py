"""What a run folder holds, for every engine: the resolved recipe (`resolved.yaml`, the
engine's keys exactly as launched), `plan.json`, and the `checkpoint-N` folders.

One home for writing the recipe and for finding checkpoints, so `ocrsft train`, the
engines, export and resume agree on what a run is.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from samples.jsonl import AtomicWriter, write_json

RESOLVED = "resolved.yaml"
PLAN_FILES = (RESOLVED, "plan.json")  # what `plan` leaves in a run folder
MARKER = "ocrsft_run.json"  # a finished torch-engine run: what export needs to merge it


def write_resolved(cfg: dict, folder: Path, note: str = "the engine's keys exactly as launched") -> Path:
    """`folder`/resolved.yaml, atomically (a worker never reads half a recipe)."""
    folder.mkdir(parents=True, exist_ok=True)
    with AtomicWriter(folder / RESOLVED) as f:
        f.write(f"# written by ocrsft: {note}\n")
        f.write(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return folder / RESOLVED


def write_run_files(cfg: dict, plan, run_dir: Path, ours: dict | None = None) -> Path:
    """resolved.yaml and, beside it, plan.json (the plan's numbers and ocrsft's own keys)."""
    path = write_resolved(cfg, run_dir, "the engine's keys as planned by `ocrsft plan`")
    write_json(run_dir / "plan.json", {**plan.as_dict(), "ocrsft": ours or {}})
    return path


def write_marker(run_dir: Path, info: dict) -> None:
    write_json(run_dir / MARKER, {"engine": "torch", **info})


def read_marker(run_dir: Path) -> dict | None:
    path = Path(run_dir) / MARKER
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return info if info.get("engine") == "torch" else None


def step_of(path: Path) -> int:
    return int(path.name.split("-")[-1])


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's `checkpoint-N` folders, oldest first (a `.part` leftover is not one)."""
    found = [p for p in Path(run_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=step_of)


def last_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None
