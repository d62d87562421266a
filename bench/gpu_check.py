"""The prepared GPU check: real-size random-init steps on one GPU (and DDP on several), one JSON line.

    python bench/gpu_check.py                 # on a CUDA host with torch + transformers + peft
    python bench/gpu_check.py --dry-run       # the same code path at tiny shapes, on CPU (a test runs it)

For a GPU host that has torch but no paddle and no network: it needs only this
repository's Python folders (well under 64 MiB) and the
pinned torch stack (requirements-torch.lock). Nothing is downloaded: every model
is random-initialised from its config. Budget: under 8 minutes on one H200.

1. seed 003's shape: LLaVA with a Qwen2-7B LM and a CLIP ViT-L/14-336 tower, bf16,
   made trainable by the bridge's own `make_trainable` (LoRA r16 on the LM, the
   projector whole at its own rate; bench/bridge.py builds and steps it).
2. PaddleOCR-VL-0.9B's shape (ERNIE-4.5-0.3B LM, 27-layer NaViT tower) through
   transformers' `PaddleOCRVLForConditionalGeneration`: full SFT, AdamW, bf16.
3. With more than one GPU: the LLaVA LoRA step again under torchrun, DDP, one
   process per GPU; tokens/s counts all ranks.

Each reports tokens/s, peak memory (GiB, torch's max allocated) and MFU =
6 * N * tokens/s / (peak TFLOPS x GPUs), N all parameters (6N is the convention;
LoRA skips the frozen weights' gradients, so its real work is nearer 4N).
Not run in CI; no GPU was lent to the session that wrote it, so its numbers are
not in the README yet.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bridge as bench_bridge  # noqa: E402  (bench/bridge.py: the LLaVA model and its LoRA step)


def paddleocr_vl_model(dtype, device, tiny: bool):
    """PaddleOCR-VL-0.9B's layout (or a tiny one), random weights, in place on `device`."""
    import torch
    from transformers import PaddleOCRVLConfig, PaddleOCRVLForConditionalGeneration

    if tiny:
        text = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    rope_parameters={"rope_type": "default", "rope_theta": 500000.0,
                                     "mrope_section": [2, 3, 3]})
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, patch_size=14, image_size=56, spatial_merge_size=2)
        image_token = 1000
    else:
        text = dict(vocab_size=103424, hidden_size=1024, intermediate_size=3072, num_hidden_layers=18,
                    num_attention_heads=16, num_key_value_heads=2, head_dim=128,
                    max_position_embeddings=131072,
                    rope_parameters={"rope_type": "default", "rope_theta": 500000.0,
                                     "mrope_section": [16, 24, 24]})
        vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                      num_attention_heads=16, patch_size=14, image_size=384, spatial_merge_size=2)
        image_token = 100295
    cfg = PaddleOCRVLConfig(text_config={**text, "rms_norm_eps": 1e-6}, vision_config=vision,
                            image_token_id=image_token)
    with torch.device(device):
        return PaddleOCRVLForConditionalGeneration._from_config(cfg, dtype=dtype), cfg


def full_sft_speed(model, cfg, device, batch_images: int, side_patches: int, seq: int,
                   steps: int) -> float:
    """Tokens/s of full-SFT AdamW steps on synthetic image+text sequences (two warm-up steps)."""
    import torch

    vc = cfg.vision_config
    merge = vc.spatial_merge_size
    n_image = side_patches * side_patches // (merge * merge)
    if n_image >= seq:
        raise SystemExit(f"gpu_check: --ocr-seq {seq} is too short for {n_image} image tokens")
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, cfg.image_token_id, (batch_images, seq), device=device, generator=g)
    ids[:, 1:1 + n_image] = cfg.image_token_id
    types = (ids == cfg.image_token_id).long()
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": types,
              "labels": ids.masked_fill(ids == cfg.image_token_id, -100),
              "pixel_values": torch.randn((batch_images * side_patches * side_patches, 3, vc.patch_size,
                                           vc.patch_size), device=device, dtype=model.dtype, generator=g),
              "image_grid_thw": torch.tensor([[1, side_patches, side_patches]] * batch_images,
                                             device=device)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    for i in range(steps + 2):
        if i == 2:
            sync(device)
            start = time.perf_counter()
        model(**inputs).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    return batch_images * seq * steps / (time.perf_counter() - start)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def mfu(n_params: int, tokens_per_s: float, peak_tflops: float, gpus: int = 1) -> float:
    return 6 * n_params * tokens_per_s / (peak_tflops * 1e12 * gpus)


def llava_check(args, device, dtype) -> dict:
    model, cfg = (tiny_llava(dtype, device) if args.dry_run else bench_bridge.gpu_model(dtype, device))
    n = sum(p.numel() for p in model.parameters())
    tps = bench_bridge.lora_speed(model, cfg, device, dtype, args.llava_batch, args.llava_seq,
                                  args.steps, args.gradient_checkpointing)
    out = {"parameters": n, "batch": args.llava_batch, "seq": args.llava_seq,
           "tokens_per_second": tps, "peak_memory_gib": peak_gib(device),
           "mfu": mfu(n, tps, args.peak_tflops)}
    del model
    return out


def tiny_llava(dtype, device):
    """bench/bridge.py's LLaVA layout at tiny size, for --dry-run."""
    import torch
    import transformers as tf

    text = tf.Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    vision = tf.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, image_size=56, patch_size=14)
    cfg = tf.LlavaConfig(vision_config=vision, text_config=text, image_token_id=1000,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    with torch.device(device):
        return tf.LlavaForConditionalGeneration._from_config(cfg, dtype=dtype), cfg


def ocr_check(args, device, dtype) -> dict:
    model, cfg = paddleocr_vl_model(dtype, device, tiny=args.dry_run)
    n = sum(p.numel() for p in model.parameters())
    side = 4 if args.dry_run else args.ocr_side_patches
    tps = full_sft_speed(model, cfg, device, args.ocr_batch, side, args.ocr_seq, args.steps)
    out = {"parameters": n, "batch": args.ocr_batch, "seq": args.ocr_seq,
           "image_patches": side * side, "tokens_per_second": tps,
           "peak_memory_gib": peak_gib(device), "mfu": mfu(n, tps, args.peak_tflops)}
    del model
    return out


def ddp_worker(args) -> None:
    """One torchrun rank: the LLaVA LoRA step under DDP; rank 0 writes the result file."""
    import torch
    import torch.distributed as dist

    local = int(os.environ["LOCAL_RANK"])
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    dtype = torch.bfloat16 if cuda else torch.float32
    model, cfg = tiny_llava(dtype, device) if args.dry_run else bench_bridge.gpu_model(dtype, device)
    n = sum(p.numel() for p in model.parameters())
    from torch.nn.parallel import DistributedDataParallel

    # As bench/bridge.py's lora_speed, with the trainable model wrapped in DDP.
    from engines.bridge import families
    from engines.bridge.train import make_trainable, param_groups
    from training.recipe.bridge import Settings

    fam = families.FAMILIES["llava"]
    s = Settings(model_name_or_path="-", train_dataset_path="-", lora_rank=16, lora_alpha=32,
                 gradient_checkpointing=args.gradient_checkpointing, learning_rate=1e-4,
                 mm_projector_lr=1e-3)
    model = make_trainable(model, fam, s, quantized=False)
    net = DistributedDataParallel(model, device_ids=[local] if cuda else None)
    optimizer = torch.optim.AdamW(param_groups(model, fam, s), lr=s.learning_rate)
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size
    g = torch.Generator(device=device).manual_seed(dist.get_rank())
    ids = torch.randint(0, cfg.image_token_id, (args.llava_batch, args.llava_seq), device=device,
                        generator=g)
    ids[:, 1:1 + side * side] = cfg.image_token_id
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "labels": ids.masked_fill(ids == cfg.image_token_id, -100),
              "pixel_values": torch.randn((args.llava_batch, 3, cfg.vision_config.image_size,
                                           cfg.vision_config.image_size), device=device, dtype=dtype,
                                          generator=g)}
    net.train()
    for i in range(args.steps + 2):
        if i == 2:
            sync(device)
            dist.barrier()
            start = time.perf_counter()
        net(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    dist.barrier()
    seconds = time.perf_counter() - start
    world = dist.get_world_size()
    peak = torch.tensor([torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0], device=device)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    if dist.get_rank() == 0:
        tps = world * args.llava_batch * args.llava_seq * args.steps / seconds
        Path(args.ddp_result).write_text(json.dumps({
            "gpus": world, "parameters": n, "tokens_per_second": tps,
            "peak_memory_gib": float(peak.item()) if cuda else None,
            "mfu": mfu(n, tps, args.peak_tflops, world)}))
    dist.destroy_process_group()


def ddp_check(args, gpus: int) -> dict:
    import socket
    import tempfile

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "ddp.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus),
               "--master_port", str(port), str(Path(__file__).resolve()), "--ddp-worker",
               "--ddp-result", str(result), *forwarded(args)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ddp_timeout)
        if res.returncode or not result.is_file():
            return {"gpus": gpus, "error": (res.stderr or res.stdout)[-800:]}
        return json.loads(result.read_text())


def forwarded(args) -> list[str]:
    out = ["--steps", str(args.steps), "--llava-batch", str(args.llava_batch), "--llava-seq",
           str(args.llava_seq), "--peak-tflops", str(args.peak_tflops)]
    return out + (["--dry-run"] if args.dry_run else []) + \
        (["--gradient-checkpointing"] if args.gradient_checkpointing else [])


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU: the code path only")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per check (after 2 warm-up)")
    ap.add_argument("--llava-batch", type=int, default=2)
    ap.add_argument("--llava-seq", type=int, default=2048)
    ap.add_argument("--ocr-batch", type=int, default=4)
    ap.add_argument("--ocr-seq", type=int, default=2048)
    ap.add_argument("--ocr-side-patches", type=int, default=56, help="image side in 14-px patches "
                    "(56: a 784-px square, 784 image tokens after the 2x2 merge)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak per GPU (H200: 989)")
    ap.add_argument("--ddp-gpus", type=int, default=None, help="GPUs for the DDP step (default: all, "
                    "when more than one; 0 skips it)")
    ap.add_argument("--ddp-timeout", type=int, default=240)
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ddp-result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dry_run:
        args.llava_seq, args.ocr_seq, args.steps = min(args.llava_seq, 64), min(args.ocr_seq, 32), \
            min(args.steps, 1)
        args.llava_batch, args.ocr_batch = min(args.llava_batch, 2), min(args.ocr_batch, 2)
    for key in ("steps", "llava_batch", "llava_seq", "ocr_batch", "ocr_seq", "ocr_side_patches"):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.ddp_worker:
        ddp_worker(args)
        return 0
    import torch

    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print(json.dumps({"check": "gpu", "skipped": "torch sees no CUDA device (use --dry-run "
                          "to run the code path at tiny shapes on CPU)"}))
        return 0
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    started = time.perf_counter()
    report = {"check": "gpu", "dry_run": args.dry_run, "torch": torch.__version__,
              "device": torch.cuda.get_device_name() if cuda else "cpu",
              "gpus": torch.cuda.device_count() if cuda else 0, "peak_tflops": args.peak_tflops}
    reset_peak(device)
    report["llava_qwen2_7b_clip_l_lora"] = llava_check(args, device, dtype)
    reset_peak(device)
    report["paddleocr_vl_0_9b_full_sft"] = ocr_check(args, device, dtype)
    gpus = report["gpus"] if args.ddp_gpus is None else args.ddp_gpus
    if args.dry_run and args.ddp_gpus:
        gpus = args.ddp_gpus  # CPU processes over gloo: the DDP code path, tiny
    if gpus > 1 or (args.dry_run and args.ddp_gpus):
        report["llava_lora_ddp"] = ddp_check(args, gpus)
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
