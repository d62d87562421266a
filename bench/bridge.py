"""Training throughput of the PyTorch bridge (`ocrsft train`, `engine: torch`) against a plain
transformers `Trainer`, and its tokens/s and MFU at a 7B shape on a GPU.

    .venv/bin/python bench/bridge.py                 # ~1.5 minutes on 2 cores: 3 rounds of 200 steps
    .venv/bin/python bench/bridge.py --rounds 1 --steps 40 --threads 2
    .venv/bin/python bench/bridge.py --gpu-shape     # CUDA only: Qwen2-7B + CLIP-L LLaVA, bf16 LoRA

CPU mode. Both sides LoRA-train the same tiny LLaVA (engines/bridge/tiny.py,
`llava-clip`: Qwen2 LM hidden 64, CLIP tower hidden 32, 56-px images) on the same
samples: the real ICDAR word crops in ../shared/data/paddleocr_rec with their
labels, cycled to --samples lines. Same LoRA (r 8, alpha 16, dropout 0.05 on the
LM's q/k/v/o/gate/up/down, projector trained whole), batch 4, lr 1e-4 cosine,
clipping 1.0, each side in a fresh process with --threads torch threads (default 1:
on this shared 2-core machine two threads stall whenever a neighbour holds a core;
one bridge run measured a median step of 21 ms but p90 713 ms with two threads,
13 ms and 15 ms with one), rounds alternating which side goes first:

  bridge    `python -m ocrsft train bridge.yaml` as a user runs it; tokens/s is the
            loop's own `train/tokens_per_second` at its last step (real tokens, i.e.
            attention-mask ones, over the loop's wall time, encoding included).
  baseline  peft + `transformers.Trainer` with a Dataset that encodes each sample
            with the bridge's Codec (so both sides see identical token ids) and a
            collator that counts the same real tokens; tokens/s = tokens /
            `train_runtime`.

Reported: median tokens/s of each side and the ratio bridge / baseline, and the
median wall time per run (imports, model load and saving included).

GPU mode (--gpu-shape): a random-init LlavaForConditionalGeneration with a
Qwen2-7B-shaped LM and a CLIP ViT-L/14-336 tower, on CUDA in bf16, made trainable by
the bridge's own `make_trainable` (LoRA r 16 on the LM, projector whole), then
--gpu-steps optimizer steps on synthetic batches (one image, 576 image tokens,
rest text, no padding) after two warm-up steps. MFU = 6 * N * tokens/s / peak, N
all parameters, peak --peak-tflops (989: H200 bf16 dense). 6N is the usual
convention; LoRA skips the frozen weights' gradients, so the real work is nearer 4N.

Measured here (2 cores, no GPU, shared), 2026-12-02, the default run (74 s in all):
  bridge    9507 tokens/s   11.5 s per run
  baseline  8625 tokens/s   11.4 s per run
  ratio bridge / baseline: tokens/s 1.102, wall 1.011
With --threads 2 --rounds 2 --steps 100 the same sides gave 1546 and 9079 (bridge),
8038 and 7301 (baseline) tokens/s: a stall in one run decides the result.
GPU mode: not run here (no GPU on this project's machines); its model has 7.94 B
parameters (checked on the meta device), and its step code ran on CPU at toy size.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REC = ROOT.parent / "shared" / "data" / "paddleocr_rec"

BASELINE = """
import json, sys
from pathlib import Path
import torch
from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainingArguments
from engines.bridge import families
from training.recipe.bridge import CANONICAL
from engines.bridge.data import Codec, collate

model_dir, data, root, out, steps, batch, seed = sys.argv[1:8]
torch.manual_seed(int(seed))
fam, model, processor = families.load(Path(model_dir))
targets = families.lora_targets(model, fam, list(CANONICAL), ("language",))
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, bias="none",
                                         target_modules=targets, modules_to_save=[fam.projector]))
codec = Codec(fam, processor)
lines = [json.loads(l) for l in open(data, encoding="utf-8")]

class Samples(torch.utils.data.Dataset):
    def __len__(self):
        return len(lines)
    def __getitem__(self, i):
        return codec.encode(lines[i], Path(data).parent, Path(root), 128)

seen = [0]
def collator(examples):
    out = collate(examples, codec.tokenizer.pad_token_id)
    seen[0] += int(out["attention_mask"].sum())
    return out

args = TrainingArguments(output_dir=out, per_device_train_batch_size=int(batch), max_steps=int(steps),
                         learning_rate=1e-4, lr_scheduler_type="cosine", max_grad_norm=1.0,
                         logging_steps=int(steps), save_strategy="no", report_to="none",
                         dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True,
                         seed=int(seed), use_cpu=not torch.cuda.is_available())
result = Trainer(model=model, args=args, train_dataset=Samples(), data_collator=collator).train()
print("BENCH " + json.dumps({"tokens": seen[0], "runtime": result.metrics["train_runtime"]}))
"""


def make_data(work: Path, n: int) -> Path:
    """n ERNIEKit lines over the real word crops and their labels (absolute paths under REC)."""
    from samples.sample import make_sample

    pairs = [line.split("\t") for name in ("rec_gt_train.txt", "rec_gt_test.txt")
             for line in (REC / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    out = work / "train.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            path, text = pairs[i % len(pairs)]
            sample = make_sample([str(REC / path)], [("OCR:", text)])
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    return out


def timed(cmd: list[str], threads: int) -> tuple[float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode:
        sys.exit(f"bench: {' '.join(cmd[:4])} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - start, res.stdout


def bridge_round(work: Path, model: Path, data: Path, r: int, args) -> tuple[float, float]:
    import yaml

    from training.monitor import read_scalars

    run = work / f"bridge{r}"
    cfg = work / f"bridge{r}.yaml"
    cfg.write_text(yaml.safe_dump({
        "engine": "torch", "model_name_or_path": str(model), "train_dataset_path": str(data),
        "image_root": str(REC), "fine_tuning": "lora", "lora_rank": 8, "lora_alpha": 16,
        "per_device_train_batch_size": args.batch, "max_steps": args.steps, "learning_rate": 1e-4,
        "lr_scheduler_type": "cosine", "max_seq_len": 128, "logging_steps": args.steps,
        "report_to": "tensorboard", "seed": r, "output_dir": str(run)}))
    wall, _ = timed([sys.executable, "-m", "ocrsft", "train", str(cfg)], args.threads)
    return wall, read_scalars(run / "tensorboard", "train/tokens_per_second")[-1][1]


def baseline_round(work: Path, model: Path, data: Path, r: int, args) -> tuple[float, float]:
    wall, out = timed([sys.executable, "-c", BASELINE, str(model), str(data), str(REC),
                       str(work / f"base{r}"), str(args.steps), str(args.batch), str(r)], args.threads)
    res = json.loads(out.split("BENCH ")[-1].splitlines()[0])
    return wall, res["tokens"] / res["runtime"]


def cpu_bench(args) -> None:
    from engines.bridge import tiny

    work = Path(tempfile.mkdtemp(prefix="ocrsft-bench-bridge-"))
    try:
        model = tiny.build("llava-clip", work / "model")
        data = make_data(work, args.samples)
        sides = {"bridge": ([], []), "baseline": ([], [])}
        order = (("bridge", bridge_round), ("baseline", baseline_round))
        for r in range(args.rounds):
            for name, fn in order if r % 2 == 0 else order[::-1]:
                wall, tps = fn(work, model, data, r, args)
                sides[name][0].append(wall)
                sides[name][1].append(tps)
                print(f"round {r + 1}: {name:8s} {tps:8.0f} tokens/s  ({wall:.1f} s per run)",
                      flush=True)
        med = {k: (statistics.median(w), statistics.median(t)) for k, (w, t) in sides.items()}
        print(f"\ntiny LLaVA (llava-clip), LoRA, {args.steps} steps x batch {args.batch}, "
              f"{args.samples} samples, {args.threads} thread(s), {args.rounds} rounds (medians)")
        for name, (wall, tps) in med.items():
            print(f"  {name:8s} {tps:8.0f} tokens/s   {wall:5.1f} s per run")
        print(f"  ratio bridge / baseline: tokens/s {med['bridge'][1] / med['baseline'][1]:.3f}, "
              f"wall {med['bridge'][0] / med['baseline'][0]:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gpu_model(dtype, device):
    """LLaVA-1.5 layout at real size: Qwen2-7B LM, CLIP ViT-L/14-336 tower, random weights."""
    import torch
    import transformers as tf

    text = tf.Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                          num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                          max_position_embeddings=32768, tie_word_embeddings=False,
                          rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    vision = tf.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                 num_attention_heads=16, image_size=336, patch_size=14)
    cfg = tf.LlavaConfig(vision_config=vision, text_config=text, image_token_id=151646,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    with torch.device(device):  # initialised in place, in bf16: no fp32 copy of 8B weights on the host
        return tf.LlavaForConditionalGeneration._from_config(cfg, dtype=dtype), cfg


def lora_speed(model, cfg, device, dtype, batch: int, seq: int, steps: int,
               checkpointing: bool) -> float:
    """Tokens/s of bridge-trainable LoRA steps on synthetic batches (two warm-up steps first)."""
    import torch

    from engines.bridge import families
    from engines.bridge.train import make_trainable, param_groups
    from training.recipe.bridge import Settings

    fam = families.FAMILIES["llava"]
    s = Settings(model_name_or_path="-", train_dataset_path="-", lora_rank=16, lora_alpha=32,
                 gradient_checkpointing=checkpointing, learning_rate=1e-4, mm_projector_lr=1e-3)
    model = make_trainable(model.to(device), fam, s, quantized=False)
    optimizer = torch.optim.AdamW(param_groups(model, fam, s), lr=s.learning_rate)
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size
    n_image = side * side  # "default" drops CLS
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, cfg.image_token_id, (batch, seq), device=device, generator=g)
    ids[:, 1:1 + n_image] = cfg.image_token_id
    labels = ids.masked_fill(ids == cfg.image_token_id, -100)
    inputs = {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids),
              "pixel_values": torch.randn((batch, 3, cfg.vision_config.image_size,
                                           cfg.vision_config.image_size), device=device, dtype=dtype,
                                          generator=g)}
    model.train()
    for i in range(steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        model(**inputs).loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * seq * steps / (time.perf_counter() - start)


def gpu_bench(args) -> None:
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench: --gpu-shape needs a CUDA GPU and torch.cuda.is_available() is False here; "
                 "the CPU benchmark is the default (no flag)")
    model, cfg = gpu_model(torch.bfloat16, torch.device("cuda"))
    n = sum(p.numel() for p in model.parameters())
    tps = lora_speed(model, cfg, torch.device("cuda"), torch.bfloat16, args.gpu_batch, args.gpu_seq,
                     args.gpu_steps, args.gradient_checkpointing)
    mfu = 6 * n * tps / (args.peak_tflops * 1e12)
    print(f"{torch.cuda.get_device_name()}: LLaVA Qwen2-7B + CLIP-L, {n / 1e9:.2f} B parameters, "
          f"bf16 LoRA r16, batch {args.gpu_batch} x {args.gpu_seq} tokens, {args.gpu_steps} steps"
          + (", gradient checkpointing" if args.gradient_checkpointing else ""))
    print(f"  {tps:.0f} tokens/s   MFU {100 * mfu:.1f}% (6*N*tokens/s over {args.peak_tflops:g} "
          f"TFLOPS)   peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per side (see the docstring)")
    ap.add_argument("--gpu-shape", action="store_true", help="the 7B-shape GPU run instead (CUDA only)")
    ap.add_argument("--gpu-batch", type=int, default=4)
    ap.add_argument("--gpu-seq", type=int, default=2048)
    ap.add_argument("--gpu-steps", type=int, default=5)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H200: 989)")
    args = ap.parse_args()
    gpu_bench(args) if args.gpu_shape else cpu_bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
