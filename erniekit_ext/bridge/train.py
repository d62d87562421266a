"""Engine `torch`: fine-tune a transformers VL model from ERNIEKit JSONL (`ocrsft train`).

Read top to bottom, like a torchtune recipe: settings -> model (optionally
quantised) -> what trains (LoRA per tower, projector whole, freezes) ->
optimizer with the projector's own learning rate -> cosine schedule with
warmup -> length-grouped batches -> loop with gradient accumulation, clipping,
TensorBoard and checkpoints -> final adapter or model, marker, loss PNG.

`run(cfg, run_dir, resume)` is what `ocrsft train` calls for `engine: torch`.
"""
from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import yaml

from converters.errors import UserError
from converters.jsonl import iter_lines
from erniekit_ext.bridge import checkpoint, families, quant
from erniekit_ext.bridge.data import Codec, Tally, collate, examples, length_grouped
from erniekit_ext.plan import dataset_paths
from erniekit_ext.bridge.runtime import isolated
from erniekit_ext.bridge.settings import Settings


def make_trainable(model, fam, s: Settings, quantized: bool):
    """Freeze everything, then open what the recipe trains."""
    model.requires_grad_(False)
    if quantized:
        model = quant.prepare(model, s.gradient_checkpointing)
    elif s.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if s.fine_tuning == "lora":
        from peft import LoraConfig, get_peft_model

        towers = tuple(t for t in s.lora_towers if not s.frozen(t))
        targets = families.lora_targets(model, fam, s.lora_target_modules, towers) if towers else []
        whole = [] if s.frozen("projector") else [fam.projector]
        if not targets and not whole:
            raise UserError("freeze_config", "freezes every LoRA tower and the projector: nothing trains")
        model = get_peft_model(model, LoraConfig(
            r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
            target_modules=targets or None, modules_to_save=whole or None, bias="none"))
    else:
        for name, p in model.named_parameters():
            p.requires_grad = not s.frozen(families.tower_of(name, fam))
    if not any(p.requires_grad for p in model.parameters()):
        raise UserError("freeze_config", f"{s.freeze_config!r} leaves nothing to train")
    return model


def param_groups(model, fam, s: Settings) -> list[dict]:
    """Projector vs the rest (seed 003's two rates); no decay on biases and norms."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (families.tower_of(checkpoint.base_name(name) or name, fam) == "projector",
                   p.dim() >= 2)
            groups.setdefault(key, []).append(p)
    return [{"params": ps, "name": ("projector" if proj else "rest") + ("" if decay else "/no_decay"),
             "lr": (s.mm_projector_lr or s.learning_rate) if proj else s.learning_rate,
             "weight_decay": s.weight_decay if decay else 0.0}
            for (proj, decay), ps in sorted(groups.items())]


def schedule(optimizer, s: Settings, total: int):
    from transformers import get_scheduler

    warmup = s.warmup_steps or math.ceil(s.warmup_ratio * total)
    name, extra = s.lr_scheduler_type, {}
    if name == "constant":
        name = "constant_with_warmup"
    elif name == "cosine" and s.min_lr > 0:
        name, extra = "cosine_with_min_lr", {"min_lr_rate": s.min_lr / s.learning_rate}
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total,
                         scheduler_specific_kwargs=extra)


def count_samples(paths: list[Path]) -> int:
    return sum(1 for p in paths for _ in iter_lines(p))


@isolated
def run(cfg: dict, run_dir: Path, resume: bool = False) -> None:
    import torch

    parts = cfg.get("assemble")
    if parts and not (Path(str(cfg.get("model_name_or_path"))) / "config.json").is_file():
        from erniekit_ext.bridge.assemble import llava

        llava(Path(parts["language_model"]), Path(parts["vision_model"]), Path(cfg["model_name_or_path"]))
    s = Settings.from_cfg(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "resolved.yaml").exists():  # `ocrsft train` writes its own
        (run_dir / "resolved.yaml").write_text(yaml.safe_dump({"engine": "torch", **cfg},
                                                              sort_keys=False, allow_unicode=True))
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if s.bf16 and device.type == "cpu":
        print("train: bf16 is for GPUs; training in fp32 on this CPU", flush=True)
        s.bf16 = False

    # Model and processor.
    model_dir = Path(s.model_name_or_path)
    fam = families.family_for(model_dir)
    qconf = quant.config_for(vars(s), fam)
    model = families.load_model(model_dir, fam, torch.bfloat16 if s.bf16 else torch.float32, qconf)
    families.check_towers(model, fam)
    processor = families.load_processor(model_dir, fam)
    if qconf is None:
        model.to(device)
    before = checkpoint.tower_checksums(model, fam)

    # What trains, and how fast.
    model = make_trainable(model, fam, s, qconf is not None)
    groups = param_groups(model, fam, s)
    optimizer = torch.optim.AdamW(groups, lr=s.learning_rate, betas=(s.adam_beta1, s.adam_beta2))
    paths = dataset_paths(s.train_dataset_path)
    n = count_samples(paths)
    if n == 0:
        raise UserError(s.train_dataset_path, "holds no samples")
    per_epoch = math.ceil(math.ceil(n / s.per_device_train_batch_size) / s.gradient_accumulation_steps)
    total = s.max_steps if s.max_steps > 0 else math.ceil(per_epoch * s.num_train_epochs)
    scheduler = schedule(optimizer, s, total)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"train: {fam.name} from {model_dir}, {s.fine_tuning}, {trainable:,} trainable parameters, "
          f"{n} samples, {total} steps on {device}", flush=True)

    # Resume where the last checkpoint stopped.
    state = {"step": 0, "epoch": 0, "batches_done": 0, "tokens": 0, "first_loss": None}
    if resume:
        last = max(checkpoint.checkpoints(run_dir), key=checkpoint.step_of, default=None)
        if last is None:
            print(f"train: no checkpoint in {run_dir}; starting from step 0", flush=True)
        else:
            state = checkpoint.load(last, model, optimizer, scheduler)
            print(f"train: resuming from {last.name} (epoch {state['epoch']})", flush=True)

    writer = None
    if s.report_to == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(s.logging_dir or str(run_dir / "tensorboard"))
    codec = Codec(fam, processor, s.template, s.system_prompt, s.max_image_size)
    pad_id = codec.tokenizer.pad_token_id if codec.tokenizer.pad_token_id is not None else 0
    tally = Tally()
    model.train()
    step_loss, micro, last_loss = 0.0, 0, None
    clock = (time.perf_counter(), state["tokens"])  # tokens/s counts this session only
    while state["step"] < total:
        epoch = state["epoch"]
        stream = examples(paths, codec, s.max_seq_len, tally, s.image_root)
        batches = length_grouped(stream, s.per_device_train_batch_size, s.seed + epoch, s.group_buffer)
        for index, batch in enumerate(batches):
            if index < state["batches_done"]:
                continue  # consumed before the checkpoint we resumed from
            inputs = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
            if s.bf16 and "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
            loss = model(**inputs).loss
            (loss / s.gradient_accumulation_steps).backward()
            step_loss += loss.item() / s.gradient_accumulation_steps
            state["tokens"] += int(inputs["attention_mask"].sum())
            micro += 1
            state["batches_done"] = index + 1
            if micro % s.gradient_accumulation_steps == 0:
                last_loss = _step(model, optimizer, scheduler, s, state, step_loss, writer, clock)
                step_loss, micro = 0.0, 0
                if s.save_steps and state["step"] % s.save_steps == 0 and state["step"] < total:
                    checkpoint.save(run_dir, state["step"], model, optimizer, scheduler, state,
                                    s.save_total_limit)
                if state["step"] >= total:
                    break
        else:  # the epoch ran out: a partial accumulation still makes a step
            if micro:
                last_loss = _step(model, optimizer, scheduler, s, state, step_loss * (
                    s.gradient_accumulation_steps / micro), writer, clock)
                step_loss, micro = 0.0, 0
            if not (run_dir / "data.json").exists():
                report_data(tally, run_dir, complete=True)
                if tally.used == 0:
                    raise UserError(s.train_dataset_path, f"no usable sample (see {run_dir}/data.json)")
            state["epoch"], state["batches_done"] = epoch + 1, 0
            tally = Tally()
            continue
        break
    if not (run_dir / "data.json").exists():  # max_steps ended the run inside the first pass
        report_data(tally, run_dir, complete=False)
    if writer:
        writer.close()

    # The result: adapter or model, processor, marker, loss curve.
    final = run_dir / "final"
    model.save_pretrained(final)
    processor.save_pretrained(final)
    after = checkpoint.tower_checksums(model, fam)
    checkpoint.write_marker(run_dir, {
        "family": fam.name, "base_model": str(model_dir.resolve()), "fine_tuning": s.fine_tuning,
        "final": "final", "template": codec.template.name, "system_prompt": s.system_prompt,
        "max_seq_len": s.max_seq_len, "max_image_size": s.max_image_size,
        "image_root": s.image_root, "train_dataset_path": s.train_dataset_path,
        "quantization": quant.mode(vars(s)), "steps": state["step"], "tokens": state["tokens"],
        "first_loss": state["first_loss"], "last_loss": last_loss, "trainable_parameters": trainable,
        "checksums": {"before": before, "after": after},
        "changed": sorted(t for t in before if before[t] != after[t])})
    if writer:
        from erniekit_ext.monitor import plot_loss

        plot_loss(s.logging_dir or run_dir / "tensorboard", run_dir / "loss.png")
    print(f"train: done, {state['step']} steps -> {final}", flush=True)


def report_data(tally: Tally, run_dir: Path, complete: bool) -> None:
    tally.write(run_dir / "data.json")
    c = tally.as_dict()
    print(f"train: data {c['read']} read, {c['used']} used, {c['rejected']} rejected "
          f"{c['reject_reasons'] or ''}, {c['truncated']} truncated"
          + ("" if complete else " (in the part of the data the steps reached)"), flush=True)


def _step(model, optimizer, scheduler, s: Settings, state: dict, loss: float, writer, clock) -> float:
    import torch

    params = [p for g in optimizer.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm) if s.max_grad_norm > 0 else None
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}  # the rates this step used
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    state["step"] += 1
    state["first_loss"] = loss if state["first_loss"] is None else state["first_loss"]
    step = state["step"]
    if step % s.logging_steps == 0:
        speed = (state["tokens"] - clock[1]) / max(time.perf_counter() - clock[0], 1e-9)
        print(f"train: step {step} loss {loss:.4f} lr {rates.get('rest', next(iter(rates.values()))):.3g}"
              + (f" norm {float(norm):.3g}" if norm is not None else ""), flush=True)
        if writer:
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/learning_rate", rates.get("rest", next(iter(rates.values()))), step)
            if "projector" in rates:
                writer.add_scalar("train/learning_rate_projector", rates["projector"], step)
            if norm is not None:
                writer.add_scalar("train/grad_norm", float(norm), step)
            writer.add_scalar("train/tokens_per_second", speed, step)
    return loss


if __name__ == "__main__":  # python -m erniekit_ext.bridge.train CONFIG RUN_DIR [--resume]
    run(yaml.safe_load(open(sys.argv[1])), Path(sys.argv[2]), "--resume" in sys.argv[3:])
