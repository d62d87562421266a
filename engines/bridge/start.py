"""Start the torch bridge: in this process, or relaunched under torchrun for several.

Like LLaMA-Factory's CLI, `ocrsft train` relaunches itself when the layout asks
for more than one process (--nproc-per-node N, NPROC_PER_NODE, more than one GPU
visible, or NNODES > 1): `python -m torch.distributed.run ... -m
engines.bridge.train CFG RUN_DIR`. The workers then find the torchrun
variables and train data-parallel (bridge/train.py).
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from training.distributed import Layout, torchrun_command, under_torchrun
from training.run_folder import write_resolved


def launch(cfg: dict, run_dir: Path, *, resume: bool = False, lay: Layout | None = None) -> None:
    from engines.bridge.train import run

    lay = lay or Layout()
    if not lay.distributed or under_torchrun():
        run(cfg, run_dir, resume=resume)
        return
    with tempfile.TemporaryDirectory(prefix="ocrsft-torchrun-") as tmp:
        resolved = write_resolved(cfg, Path(tmp))  # this node's copy: node 0 owns run_dir
        cmd = torchrun_command(lay, "engines.bridge.train", str(resolved), str(Path(run_dir).resolve()),
                               *(["--resume"] if resume else []))
        res = subprocess.run(cmd)
    if res.returncode:
        raise RuntimeError(f"torchrun exited with {res.returncode} (its workers' errors are above)")
