"""Training in several processes through the engines' own launchers, on CPU (gloo).

Paddle: 2 workers through paddle.distributed.launch (world size 2 in both logs,
disjoint halves of the data, rank 0 alone saves, --resume continues under 2
workers), and 2 localhost nodes through two launchers. Torch: `ocrsft train
--nproc-per-node 2` relaunches under torchrun, and 2 processes at batch B equal
1 process at batch B x accumulation 2, and so does FSDP; resume under torchrun is
bit-identical.
Every test picks free ports and leaves no process behind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_cli import CONFIG
from training.monitor import read_scalars

BRIDGE = Path(__file__).resolve().parent.parent / "configs" / "bridge"
LAYOUT_ENV = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "PADDLE_NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in LAYOUT_ENV}
    return {**base, **{k: str(v) for k, v in extra.items()}}


def cpu_env(**extra) -> dict:
    """Torch workers on the CPU (gloo) on any host: CUDA_VISIBLE_DEVICES="" hides the GPUs.
    paddle.distributed.launch cannot be told so: given "", it plans one GPU named ''."""
    return env(CUDA_VISIBLE_DEVICES="", **extra)


def one_gpu() -> bool:
    from training.distributed import visible_gpus

    return visible_gpus() == 1


# Paddle's launcher puts its workers on the GPUs it finds: 2 workers need none (gloo) or 2.
two_paddle_workers = pytest.mark.skipif(one_gpu(), reason="2 paddle workers need 0 or >= 2 GPUs")


def ocrsft(*args, environ=None, wait=True):
    """`ocrsft ...` in its own process group, so a failure leaves no worker behind."""
    proc = subprocess.Popen([sys.executable, "-m", "ocrsft", *map(str, args)], env=environ or env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    return finish(proc) if wait else proc


def finish(proc) -> str:
    try:
        out, _ = proc.communicate(timeout=400)
    finally:
        stop(proc)
    assert proc.returncode == 0, out[-5000:]
    return out


def stop(proc) -> None:
    """Kill what is left of `proc`'s process group (its launcher and workers)."""
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def paddle_train(model, words, out, *extra, **kw):
    return ocrsft("train", CONFIG, f"model_name_or_path={model}",
                  f"train_dataset_path={words / 'train.jsonl'}",
                  f"eval_dataset_path={words / 'val.jsonl'}", f"output_dir={out}",
                  "warmup_steps=1", "eval_generation_samples=2", *extra, **kw)


def worker_logs(folder: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in sorted(folder.glob("workerlog.*"))]


@pytest.mark.slow
@two_paddle_workers
def test_two_paddle_workers_share_the_data_and_resume(tiny_model, icdar_words, tmp_path):
    out = tmp_path / "run"
    first = paddle_train(tiny_model, icdar_words, out, "max_steps=2", "eval_steps=2",
                         "save_steps=2", "--nproc-per-node", "2",
                         environ=env(MASTER_PORT=free_port()))
    assert "world size 2" in first
    plan = json.loads((out / "plan.json").read_text())
    # G is the world size: seed 002's keep-batch rule halves B (4 -> 2) for 2 workers.
    assert (plan["G"], plan["per_device"], plan["A"]) == (2, 2, 1)
    logs = worker_logs(out / "launch_logs")
    assert len(logs) == 2
    assert all("world_size: 2" in log or "world_size=2" in log for log in logs), logs[0][-3000:]
    # Rank 0 alone saves; the other rank logs no save.
    assert "Saving model checkpoint" in logs[0] and "Saving model checkpoint" not in logs[1]
    seen = json.loads((out / "data_seen.json").read_text())
    # Each rank trained on 2 steps x 2 samples of its own: disjoint halves of what was read.
    assert seen["trained_samples_per_rank"] == [4, 4] and seen["samples_on_several_ranks"] == 0
    # The generation eval decodes on rank 0 alone: 2 samples per evaluation.
    assert "eval: rank 0 decoded 2 samples" in logs[0] and "decoded" not in logs[1]
    gen = (out / "eval_generation.jsonl").read_text().splitlines()
    assert len(gen) == 2 * len(read_scalars(out / "tensorboard", "eval/cer"))

    again = paddle_train(tiny_model, icdar_words, out, "max_steps=3", "eval_steps=100",
                         "save_steps=3", "--nproc-per-node", "2", "--resume",
                         environ=env(MASTER_PORT=free_port()))
    assert "world size 2" in again
    logs = worker_logs(out / "launch_logs")
    assert all("checkpoint-2" in log for log in logs)      # both ranks continue from step 2
    steps = [s for s, _ in read_scalars(out / "tensorboard", "train/loss")]
    assert steps == [1, 2, 3], steps
    assert (out / "checkpoint-3").is_dir()


@pytest.mark.slow
@two_paddle_workers
def test_two_paddle_nodes_on_localhost_train(tiny_model, icdar_words, tmp_path):
    out, port = tmp_path / "run", free_port()
    nodes = [paddle_train(tiny_model, icdar_words, out, "max_steps=2", "do_eval=false",
                          "save_steps=2", "--nproc-per-node", "1", wait=False,
                          environ=env(NNODES=2, NODE_RANK=rank, MASTER_ADDR="127.0.0.1",
                                      MASTER_PORT=port))
             for rank in (0, 1)]
    try:  # if one node fails, the other would wait for it forever: stop both
        lead, other = (finish(p) for p in nodes)
    finally:
        for p in nodes:
            stop(p)
    assert "world size 2; this is node 0" in lead and "this is node 1" in other
    assert "plan:" in lead and "plan:" not in other        # node 0 owns the run folder
    assert (json.loads((out / "plan.json").read_text())["G"]) == 2
    node1 = Path(re.search(r"node 1 writes its launcher logs to (\S+)", other).group(1))
    logs = worker_logs(out / "launch_logs") + worker_logs(node1)
    shutil.rmtree(node1)
    assert len(logs) == 2 and all("world_size: 2" in log or "world_size=2" in log for log in logs)
    assert [s for s, _ in read_scalars(out / "tensorboard", "train/loss")] == [1, 2]
    assert (out / "checkpoint-2").is_dir()


def adapter(run: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(run / "final" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_two_torch_processes_equal_one_with_twice_the_accumulation(tiny_bridge, rec_data, tmp_path):
    """Seed 003's recipe (LoRA on both towers, projector whole at its own rate) on its stand-in."""
    recipe = BRIDGE / "seed003_llava_qwen2_chinese_clip.yaml"
    common = [f"model_name_or_path={tiny_bridge['llava-chinese-clip']}",
              f"train_dataset_path={rec_data}", "bf16=false", "logging_steps=1", "max_seq_len=256",
              "max_steps=4", "per_device_train_batch_size=2", "gradient_accumulation_steps=2",
              "lora_dropout=0", "learning_rate=1e-2", "mm_projector_lr=2e-2", "warmup_steps=1",
              "gradient_checkpointing=false"]
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    ocrsft("train", recipe, *common, f"output_dir={one}", environ=cpu_env())
    out = ocrsft("train", recipe, *common, f"output_dir={two}", "save_steps=2", "--nproc-per-node",
                 "2", environ=cpu_env(MASTER_PORT=free_port()))
    assert "x 2 processes" in out
    plan = json.loads((two / "plan.json").read_text())
    assert (plan["G"], plan["per_device"], plan["A"]) == (2, 2, 1)   # keep-batch: A 2 -> 1

    def loss(run):
        return dict(read_scalars(run / "tensorboard", "train/loss"))

    a, b = loss(one), loss(two)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert all(abs(a[s] - b[s]) < 1e-5 for s in a), (a, b)
    wa, wb = adapter(one), adapter(two)
    assert sorted(wa) == sorted(wb)
    assert max(float(abs(wa[k] - wb[k]).max()) for k in wa) < 1e-5
    assert json.loads((two / "ocrsft_run.json").read_text())["processes"] == 2

    # FSDP (fsdp: true) shards the same run: same losses, same adapter, frozen towers untouched.
    sharded = tmp_path / "fsdp"
    ocrsft("train", recipe, *common, f"output_dir={sharded}", "fsdp=true", "--nproc-per-node", "2",
           environ=cpu_env(MASTER_PORT=free_port()))
    c, wc = loss(sharded), adapter(sharded)
    assert sorted(c) == sorted(b) and all(abs(c[s] - b[s]) < 1e-5 for s in c), (b, c)
    assert sorted(wc) == sorted(wb) and max(float(abs(wc[k] - wb[k]).max()) for k in wb) < 1e-5
    info = json.loads((sharded / "ocrsft_run.json").read_text())
    assert info["changed"] == ["projector"]
    assert info["checksums"]["after"]["vision"] == info["checksums"]["before"]["vision"]

    # A crash after checkpoint-2, resumed under torchrun: bit-identical to the straight run.
    resumed.mkdir()
    for name in ("checkpoint-2", "resolved.yaml", "plan.json"):
        (shutil.copytree if (two / name).is_dir() else shutil.copy)(two / name, resumed / name)
    ocrsft("train", recipe, *common, f"output_dir={resumed}", "save_steps=2", "--resume",
           environ=cpu_env(MASTER_PORT=free_port(), NPROC_PER_NODE=2))
    wr = adapter(resumed)
    assert all((wr[k] == wb[k]).all() for k in wb)
    c = loss(resumed)
    assert sorted(c) == [3, 4] and all(c[s] == b[s] for s in c)
