"""Engine `torch`: fine-tune a transformers VL model from ERNIEKit JSONL (`ocrsft train`).

Read top to bottom, like a torchtune recipe: settings -> model (optionally
quantised) -> what trains (LoRA per tower, projector whole, freezes) ->
optimizer with the projector's own learning rate -> cosine schedule with
warmup -> length-grouped batches -> loop with gradient accumulation, clipping,
TensorBoard and checkpoints -> final adapter or model, marker, loss PNG.

`run(cfg, run_dir, resume)` is what `ocrsft train` calls for `engine: torch`.

Under torchrun (bridge/start.py) the same loop trains data-parallel: every rank
reads the same seeded, length-grouped stream and takes every world-th batch, so
the ranks hold disjoint shards and each knows the whole step (a round is one
batch per rank; an incomplete last round is dropped). DDP syncs gradients only
on the last micro-step of an accumulation (`no_sync()` before it). Rank 0 alone
writes checkpoints, TensorBoard, data.json and the final model; a barrier
follows each checkpoint. 4/8-bit models load onto the rank's own GPU.
`fsdp: true` shards the model instead of replicating it (FSDP2: each transformer
block a unit); the final weights are gathered for rank 0 to save. Checkpoints,
resume and 4/8-bit are refused with it for now.

Why this loop and not transformers.Trainer: the loop already holds the per-module
learning rates, LoRA per tower, modules_to_save, length grouping, tower
checksums and resume; a DDP version of it matched one process at twice the
accumulation exactly (../shared/notes/distributed-facts.md), which Trainer's
own sampler and loss averaging would not give without overriding both.

The loss of an optimizer step weights tokens: the sum of the token losses of all
its micro-batches on all ranks over their label tokens, so a 3-token answer
counts 3/300 of a 300-token one (the model's mean loss times its label tokens
gives each micro-batch's sum).
"""
from __future__ import annotations

import math
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import yaml

from engines.bridge import checkpoint, families, quant
from engines.bridge.data import IGNORE, Codec, Tally, collate, examples, length_grouped
from engines.bridge.runtime import isolated
from samples.errors import UserError
from training.plan import count_samples
from training.recipe import dataset_paths
from training.recipe.bridge import Settings
from training.run_folder import RESOLVED, last_checkpoint, write_marker, write_resolved


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


class World:
    """This process's place in a torchrun job (rank 0 of 1 outside one)."""

    def __init__(self):
        import torch

        from training import distributed

        self.size = distributed.world_size() if distributed.under_torchrun() else 1
        self.rank, self.local_rank = 0, distributed.local_rank()
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{self.local_rank}" if cuda else "cpu")
        if self.size > 1:
            import torch.distributed as dist

            if cuda:
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if cuda else "gloo")
            self.rank = dist.get_rank()

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def total(self, value: float) -> float:
        if self.size == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item())

    def gather(self, obj) -> list:
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def label_tokens(batch) -> int:
    """Label tokens the causal-LM loss averages over (labels shift left by one)."""
    return sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in batch)


def steps_of(batches, world: int, accumulation: int, skip: int):
    """(batches consumed so far, rounds) per optimizer step; a round holds one batch per rank.

    `skip` batches were consumed before a resume. An incomplete round at the end is
    dropped; a step with fewer than `accumulation` rounds ends an epoch."""
    rounds, current = [], []
    index = skip
    for i, batch in enumerate(batches):
        if i < skip:
            continue
        current.append(batch)
        if len(current) < world:
            continue
        index = i + 1
        rounds.append(current)
        current = []
        if len(rounds) == accumulation:
            yield index, rounds
            rounds = []
    if rounds:
        yield index, rounds


def wrap_ddp(model, world: World):
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Unused parameters are normal here: a text-only batch leaves the vision LoRA idle.
    return DistributedDataParallel(model, device_ids=[world.local_rank] if world.device.type == "cuda"
                                   else None, find_unused_parameters=True)


def shard(model) -> None:
    """FSDP2: each transformer block its own unit, then the rest at the root."""
    from torch.distributed.fsdp import fully_shard

    for module in list(model.modules()):
        if type(module).__name__.endswith(("DecoderLayer", "EncoderLayer")):
            fully_shard(module)
    fully_shard(model)


def gathered_state(model) -> dict:
    """The whole state dict of a sharded model, on the CPU (a collective: every rank calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


@isolated
def run(cfg: dict, run_dir: Path, resume: bool = False) -> None:
    import torch

    world = World()
    parts = cfg.get("assemble")
    if world.lead and parts and not (Path(str(cfg.get("model_name_or_path"))) / "config.json").is_file():
        from engines.bridge.assemble import llava

        llava(Path(parts["language_model"]), Path(parts["vision_model"]), Path(cfg["model_name_or_path"]))
    world.barrier()
    s = Settings.from_cfg(cfg)
    run_dir = Path(run_dir)
    if world.lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / RESOLVED).exists():  # `ocrsft train` writes its own
            write_resolved({"engine": "torch", **cfg}, run_dir)
    say = (lambda *a, **k: print(*a, **k, flush=True)) if world.lead else (lambda *a, **k: None)
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    device = world.device
    if s.bf16 and device.type == "cpu":
        say("train: bf16 is for GPUs; training in fp32 on this CPU")
        s.bf16 = False

    # Model and processor.
    model_dir = Path(s.model_name_or_path)
    fam = families.family_for(model_dir)
    qconf = quant.config_for(vars(s), fam)
    model = families.load_model(model_dir, fam, torch.bfloat16 if s.bf16 else torch.float32, qconf,
                                device_map={"": device} if qconf is not None and device.type == "cuda"
                                else None)
    families.check_towers(model, fam)
    processor = families.load_processor(model_dir, fam)
    if qconf is None:
        model.to(device)
    before = checkpoint.tower_checksums(model, fam)

    # What trains, and how fast.
    model = make_trainable(model, fam, s, qconf is not None)
    sharded = s.fsdp and world.size > 1
    if sharded:
        if resume:
            raise UserError("fsdp", "--resume is not supported with fsdp yet (train with DDP: "
                                    "fsdp: false)")
        if qconf is not None:
            raise UserError("fsdp", "does not shard 4/8-bit weights; use DDP (fsdp: false)")
        shard(model)
    groups = param_groups(model, fam, s)
    optimizer = torch.optim.AdamW(groups, lr=s.learning_rate, betas=(s.adam_beta1, s.adam_beta2))
    paths = dataset_paths(s.train_dataset_path)
    n = sum(count_samples(p)[0] for p in paths)
    if n == 0:
        raise UserError(s.train_dataset_path, "holds no samples")
    per_step = s.per_device_train_batch_size * s.gradient_accumulation_steps * world.size
    total = s.max_steps if s.max_steps > 0 else math.ceil(math.ceil(n / per_step) * s.num_train_epochs)
    scheduler = schedule(optimizer, s, total)
    if sharded and 0 < s.save_steps < total:
        raise UserError("save_steps", "checkpoints are not supported with fsdp yet: set "
                                      f"save_steps: 0 or >= the {total} steps (or fsdp: false)")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"train: {fam.name} from {model_dir}, {s.fine_tuning}, {trainable:,} trainable parameters, "
        f"{n} samples, {total} steps on {device}"
        + (f" x {world.size} processes" if world.size > 1 else ""))

    # Resume where the last checkpoint stopped.
    state = {"step": 0, "epoch": 0, "batches_done": 0, "tokens": 0, "first_loss": None}
    if resume:
        last = last_checkpoint(run_dir)
        if last is None:
            say(f"train: no checkpoint in {run_dir}; starting from step 0")
        else:
            state = checkpoint.load(last, model, optimizer, scheduler, world.rank)
            say(f"train: resuming from {last.name} (epoch {state['epoch']})")
    net = model if sharded else wrap_ddp(model, world)

    writer = None
    if s.report_to == "tensorboard" and world.lead:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(s.logging_dir or str(run_dir / "tensorboard"))
    codec = Codec(fam, processor, s.template, s.system_prompt, s.max_image_size)
    pad_id = codec.tokenizer.pad_token_id if codec.tokenizer.pad_token_id is not None else 0
    tally = Tally()
    net.train()
    last_loss = None
    clock = (time.perf_counter(), state["tokens"])  # tokens/s counts this session only

    def save_checkpoint():
        rng = world.gather(torch.get_rng_state())  # each rank resumes its own dropout stream
        if world.lead:
            checkpoint.save(run_dir, state["step"], model, optimizer, scheduler, state,
                            s.save_total_limit, rng)
        world.barrier()

    while state["step"] < total:
        epoch = state["epoch"]
        stream = examples(paths, codec, s.max_seq_len, tally, s.image_root)
        batches = length_grouped(stream, s.per_device_train_batch_size, s.seed + epoch, s.group_buffer)
        for done, rounds in steps_of(batches, world.size, s.gradient_accumulation_steps,
                                     state["batches_done"]):
            everyone = [e for r in rounds for b in r for e in b]  # every rank's examples
            labelled = max(1, label_tokens(everyone))  # the step's label tokens, all ranks
            loss_sum = 0.0
            for i, batch in enumerate(r[world.rank] for r in rounds):
                inputs = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
                if s.bf16 and "pixel_values" in inputs:
                    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
                last_micro = i == len(rounds) - 1
                if sharded:  # FSDP's no_sync: reduce-scatter on the last micro-step only
                    net.set_requires_gradient_sync(last_micro)
                with nullcontext() if last_micro or world.size == 1 or sharded else net.no_sync():
                    token_sum = net(**inputs).loss * label_tokens(batch)
                    # DDP averages gradients over ranks; x world turns that into their sum.
                    (token_sum * (world.size / labelled)).backward()
                loss_sum += float(token_sum.detach())
            state["tokens"] += sum(len(e) for e in everyone)
            state["batches_done"] = done
            last_loss = _step(optimizer, scheduler, s, state, world.total(loss_sum) / labelled,
                              writer, clock, world.lead)
            if s.save_steps and state["step"] % s.save_steps == 0 and state["step"] < total:
                save_checkpoint()
            if state["step"] >= total:
                break
        else:  # the epoch ran out
            if world.lead and not (run_dir / "data.json").exists():
                report_data(tally, run_dir, complete=True)
            if tally.used == 0:
                raise UserError(s.train_dataset_path, f"no usable sample (see {run_dir}/data.json)")
            state["epoch"], state["batches_done"] = epoch + 1, 0
            tally = Tally()
            continue
        break
    if world.lead and not (run_dir / "data.json").exists():  # max_steps ended the first pass
        report_data(tally, run_dir, complete=False)
    if writer:
        writer.close()

    # The result: adapter or model, processor, marker, loss curve.
    full = gathered_state(model) if sharded else None  # every rank takes part
    if world.lead:
        final = run_dir / "final"
        model.save_pretrained(final, **({"state_dict": full} if sharded else {}))
        processor.save_pretrained(final)
        after = checkpoint.tower_checksums(
            {n: full[n] for n, _ in model.named_parameters()} if sharded else model, fam)
        write_marker(run_dir, {
            "family": fam.name, "base_model": str(model_dir.resolve()), "fine_tuning": s.fine_tuning,
            "final": "final", "template": codec.template.name, "system_prompt": s.system_prompt,
            "max_seq_len": s.max_seq_len, "max_image_size": s.max_image_size,
            "image_root": s.image_root, "train_dataset_path": s.train_dataset_path,
            "quantization": quant.mode(vars(s)), "steps": state["step"], "tokens": state["tokens"],
            "first_loss": state["first_loss"], "last_loss": last_loss,
            "trainable_parameters": trainable, "processes": world.size,
            "checksums": {"before": before, "after": after},
            "changed": sorted(t for t in before if before[t] != after[t])})
        if writer:
            from training.monitor import plot_loss

            plot_loss(s.logging_dir or run_dir / "tensorboard", run_dir / "loss.png")
        say(f"train: done, {state['step']} steps -> {final}")
    world.barrier()
    world.close()


def report_data(tally: Tally, run_dir: Path, complete: bool) -> None:
    tally.write(run_dir / "data.json")
    c = tally.as_dict()
    print(f"train: data {c['read']} read, {c['used']} used, {c['rejected']} rejected "
          f"{c['reject_reasons'] or ''}, {c['truncated']} truncated"
          + ("" if complete else " (in the part of the data the steps reached)"), flush=True)


def _step(optimizer, scheduler, s: Settings, state: dict, loss: float, writer, clock,
          lead: bool = True) -> float:
    import torch

    params = [p for g in optimizer.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm) if s.max_grad_norm > 0 else None
    norm = getattr(norm, "full_tensor", lambda: norm)()  # FSDP: a DTensor
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}  # the rates this step used
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    state["step"] += 1
    state["first_loss"] = loss if state["first_loss"] is None else state["first_loss"]
    step = state["step"]
    if step % s.logging_steps == 0 and lead:
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


if __name__ == "__main__":  # python -m engines.bridge.train CONFIG RUN_DIR [--resume]
    run(yaml.safe_load(open(sys.argv[1])), Path(sys.argv[2]), "--resume" in sys.argv[3:])
