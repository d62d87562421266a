"""How many processes a run uses, on how many nodes, and the launcher commands that start them.

    ocrsft train CFG --nproc-per-node N        (or NPROC_PER_NODE=N, for make and Docker)
    NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host MASTER_PORT=port ocrsft train CFG --nproc-per-node N

G, the plan's world size, is processes per node x nodes. Without --nproc-per-node
or NPROC_PER_NODE a node runs one process per visible GPU (one on a CPU box).

The paddle engines start workers through `paddle.distributed.launch`, the torch
bridge through `torchrun` (as LLaMA-Factory's CLI does). Inside a worker the
launchers' own variables say who it is: `rank()`, `world_size()`.

paddle.distributed.launch has no `-m` option: given `-m pkg.mod`, it falls back to
its legacy launcher, which runs `python -u pkg.mod` as a file path and every worker
dies with "can't open file". A training script that is not a .py file is run as
given with its arguments, so the script here is the interpreter itself:
`... launch [opts] <python> -u -m pkg.mod cfg`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from samples.errors import UserError

DEFAULT_MASTER_PORT = "8090"


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    rank = name.endswith("NODE_RANK")
    if not value.isdigit() or int(value) < (0 if rank else 1):
        raise UserError(name, f"must be a whole number{'' if rank else ' >= 1'}, got {value!r}")
    return int(value)


def visible_gpus() -> int:
    """GPUs this node's workers could use: CUDA_VISIBLE_DEVICES, else what paddle or torch sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import paddle

        if paddle.device.is_compiled_with_cuda():
            return paddle.device.cuda.device_count()
    except ImportError:
        pass
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def node_rank_from_env() -> int:
    """NODE_RANK, or PADDLE_NODE_RANK (the name ERNIEKit's own launcher reads); 0 when unset."""
    rank = _int_env("NODE_RANK")
    return rank if rank is not None else _int_env("PADDLE_NODE_RANK") or 0


@dataclass(frozen=True)
class Layout:
    """Processes per node, nodes, and where they meet."""
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: str | None = None

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def layout(nproc_per_node: int | None = None, gpus: int | None = None) -> Layout:
    """From --nproc-per-node, NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT.

    `gpus`: GPUs visible here when the caller knows (default: ask paddle or torch)."""
    nproc = nproc_per_node or _int_env("NPROC_PER_NODE")
    if nproc is not None and nproc < 1:
        raise UserError("--nproc-per-node", f"must be >= 1, got {nproc}")
    if nproc is None:
        nproc = max(1, visible_gpus() if gpus is None else gpus)
    nnodes = _int_env("NNODES") or 1
    node_rank = node_rank_from_env()
    if node_rank >= nnodes:
        raise UserError("NODE_RANK", f"{node_rank} is not below NNODES {nnodes}")
    master = os.environ.get("MASTER_ADDR") or None
    if nnodes > 1 and not master:
        raise UserError("MASTER_ADDR", f"is not set; NNODES={nnodes} needs the address of node 0")
    return Layout(nproc, nnodes, node_rank, master, os.environ.get("MASTER_PORT") or None)


def paddle_launch_command(lay: Layout, log_dir: Path, module: str, *args: str,
                          devices: str | None = None, python: str = sys.executable) -> list[str]:
    """`python -m paddle.distributed.launch ... python -u -m module args` (see the module doc)."""
    cmd = [python, "-m", "paddle.distributed.launch", "--nproc_per_node", str(lay.nproc_per_node)]
    if lay.nnodes > 1:
        cmd += ["--nnodes", str(lay.nnodes), "--rank", str(lay.node_rank),
                "--master", f"{lay.master_addr}:{lay.master_port or DEFAULT_MASTER_PORT}"]
    elif lay.master_port:
        cmd += ["--master", f"{lay.master_addr or '127.0.0.1'}:{lay.master_port}"]
    if devices:
        cmd += ["--devices", devices]
    return cmd + ["--log_dir", str(log_dir), python, "-u", "-m", module, *args]


def torchrun_command(lay: Layout, module: str, *args: str, python: str = sys.executable) -> list[str]:
    """`python -m torch.distributed.run ... -m module args`: torchrun, as its own interpreter."""
    cmd = [python, "-m", "torch.distributed.run", "--nproc_per_node", str(lay.nproc_per_node),
           "--nnodes", str(lay.nnodes), "--node_rank", str(lay.node_rank)]
    if lay.master_addr or lay.nnodes > 1:
        cmd += ["--master_addr", str(lay.master_addr)]
    if lay.master_port:
        cmd += ["--master_port", lay.master_port]
    return cmd + ["-m", module, *args]


# --- inside a worker -------------------------------------------------------------------------

def _first_int(names: tuple[str, ...], default: int) -> int:
    """The first of these variables that holds a number: torchrun's name, then Paddle's."""
    for name in names:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return default


def rank() -> int:
    """This worker's global rank under either launcher (0 outside one)."""
    return _first_int(("RANK", "PADDLE_TRAINER_ID"), 0)


def world_size() -> int:
    return _first_int(("WORLD_SIZE", "PADDLE_TRAINERS_NUM"), 1)


def local_rank() -> int:
    return _first_int(("LOCAL_RANK", "PADDLE_LOCAL_RANK"), 0)


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ)
