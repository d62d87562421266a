"""The process layout and the exact commands the launchers get (no training here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engines.paddleformers.train import distributed_command
from samples.errors import UserError
from training.distributed import Layout, layout, paddle_launch_command, torchrun_command

LAYOUT_ENV = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "PADDLE_NODE_RANK", "MASTER_ADDR", "MASTER_PORT",
              "CUDA_VISIBLE_DEVICES")


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAYOUT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_paddle_launcher_runs_the_interpreter_as_its_script(clean_env):
    """The launcher has no -m: `-m pkg.mod` sent it to its legacy mode, which ran pkg.mod as a file."""
    resolved = Path("/runs/r/resolved.yaml")
    assert distributed_command(resolved, Layout(2)) == [
        sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
        "--log_dir", "/runs/r/launch_logs",
        sys.executable, "-u", "-m", "engines.paddleformers.train", "/runs/r/resolved.yaml"]
    clean_env.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    two_nodes = Layout(4, 2, 1, "10.0.0.1", "29500")
    assert distributed_command(resolved, two_nodes, Path("/logs")) == [
        sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "4",
        "--nnodes", "2", "--rank", "1", "--master", "10.0.0.1:29500", "--devices", "0,1,2,3",
        "--log_dir", "/logs",
        sys.executable, "-u", "-m", "engines.paddleformers.train", "/runs/r/resolved.yaml"]
    assert "-m" not in paddle_launch_command(Layout(2), Path("l"), "m", python="py")[3:-4]


def test_torchrun_command(clean_env):
    assert torchrun_command(Layout(2, master_port="29511"), "engines.bridge.train", "c.yaml",
                            "run", python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--node_rank", "0", "--master_port", "29511", "-m", "engines.bridge.train",
        "c.yaml", "run"]
    assert torchrun_command(Layout(8, 2, 1, "h", "1234"), "m", python="py")[3:13] == [
        "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1", "--master_addr", "h",
        "--master_port", "1234"]


def test_layout_from_flag_environment_and_gpus(clean_env):
    assert layout(gpus=0) == Layout(1)                                # a CPU box: one process
    assert layout(gpus=8).world_size == 8                             # one per visible GPU
    assert layout(3, gpus=8).nproc_per_node == 3                      # the flag wins
    clean_env.setenv("NPROC_PER_NODE", "2")
    assert layout(gpus=8).nproc_per_node == 2                         # then the variable
    clean_env.setenv("NNODES", "2")
    with pytest.raises(UserError, match="MASTER_ADDR"):
        layout(gpus=0)
    clean_env.setenv("MASTER_ADDR", "10.0.0.1")
    clean_env.setenv("NODE_RANK", "1")
    lay = layout(gpus=0)
    assert (lay.world_size, lay.node_rank, lay.master_addr) == (4, 1, "10.0.0.1")
    clean_env.delenv("NODE_RANK")
    clean_env.setenv("PADDLE_NODE_RANK", "1")                         # ERNIEKit's name for it
    assert layout(gpus=0).node_rank == 1
    clean_env.setenv("NODE_RANK", "2")
    with pytest.raises(UserError, match="NODE_RANK: 2 is not below NNODES 2"):
        layout(gpus=0)
    clean_env.setenv("NPROC_PER_NODE", "two")
    with pytest.raises(UserError, match="NPROC_PER_NODE"):
        layout(gpus=0)
