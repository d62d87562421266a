"""bench/gpu_check.py cannot run its real shapes here (no GPU); its code path runs at tiny shapes.

The dry run goes through the same functions as on a GPU (LLaVA LoRA step, PaddleOCR-VL
full SFT through transformers, the torchrun DDP worker over gloo) with paddle made
unimportable, as on the torch-only GPU host it is written for.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
# Runs the script as __main__ with paddle and paddleformers unimportable.
NO_PADDLE = ("import runpy, sys; sys.modules['paddle'] = sys.modules['paddleformers'] = None; "
             "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def check(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_PADDLE, str(CHECK), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_dry_run_prints_one_json_line_without_paddle():
    res = check("--dry-run", "--ddp-gpus", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["dry_run"] is True
    for key in ("llava_qwen2_7b_clip_l_lora", "paddleocr_vl_0_9b_full_sft", "llava_lora_ddp"):
        part = report[key]
        assert "error" not in part, part
        assert part["tokens_per_second"] > 0 and part["mfu"] > 0 and part["parameters"] > 0
    assert report["llava_lora_ddp"]["gpus"] == 2


def test_bad_arguments_are_refused():
    res = check("--steps", "0")
    assert res.returncode == 2 and "--steps must be at least 1" in res.stderr
