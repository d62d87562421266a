"""PaddleFormers trainer hooks: what a run is fed, and the decoded eval.

`install_trainer_hooks` swaps PaddleFormers' SFT trainer class for a subclass,
for one run, that counts what the training collator is fed (packed sequences,
samples, real tokens). The counts go into the logged scalars (`train/fill`,
`train/samples_per_sequence`) and into `data_seen.json` in the run folder, so
the planner's expected packing fill can be checked against the run, and the
benchmark can report real tokens per second.

Under several workers each rank counts its own loader; at the end the counts are
gathered and rank 0 alone writes `data_seen.json`, with every rank's share, the
samples more than one rank saw (0 when the ranks got disjoint shards of distinct
samples) and tokens/s of all ranks together. Only rank 0 decodes the generation
eval, so it runs once, not once per worker.
"""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from samples.jsonl import write_json

FINGERPRINTED_BATCHES = 100_000


class DataMeter:
    """Counts collator input. Shared memory, so dataloader worker processes count too."""

    def __init__(self, max_seq_len: int):
        self.max_seq_len = max_seq_len
        self._counts = multiprocessing.Array("d", 3)  # sequences, samples, tokens
        # Which samples each micro-batch held, in loader order, to show the ranks trained on
        # disjoint shards. Seen in this process only: loader worker processes keep theirs.
        self.batches: list[list[int]] = []

    def wrap(self, collate):
        def counted(batch, *args, **kwargs):
            # batch: one list of Sequence objects per slot (several when packing)
            samples = sum(len(seqs) for seqs in batch)
            tokens = sum(len(s.token_ids) for seqs in batch for s in seqs)
            if len(self.batches) < FINGERPRINTED_BATCHES:
                self.batches.append([hash(tuple(s.token_ids)) for seqs in batch for s in seqs])
            with self._counts.get_lock():
                self._counts[0] += len(batch)
                self._counts[1] += samples
                self._counts[2] += tokens
            return collate(batch, *args, **kwargs)

        return counted

    def summary(self) -> dict:
        sequences, samples, tokens = self._counts[:]
        if not sequences:
            return {}
        return {"sequences": int(sequences), "samples": int(samples), "tokens": int(tokens),
                "max_seq_len": self.max_seq_len, "samples_per_sequence": samples / sequences,
                "fill": tokens / (sequences * self.max_seq_len)}


def StartStep():
    """A callback noting the step training starts from (after a resume loads its state)."""
    from paddleformers.trainer import TrainerCallback

    class _StartStep(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            state._ocrsft_start_step = state.global_step

    return _StartStep()


def install_trainer_hooks(run_dir: Path, generation: dict | None = None) -> None:
    """Make PaddleFormers' SFT workflow build our trainer subclass for this process's run.

    `generation` (GenerationEval's arguments, from the recipe's eval_generation_* keys) adds each task family's decoded main score to every evaluation (engines/paddleformers/eval_generation.py)."""
    import paddleformers.cli.train.sft.workflow as workflow

    base = workflow.SFTTrainer
    base = getattr(base, "_ocrsft_base", base)
    for name in ("get_train_dataloader", "log", "train", "is_world_process_zero", "evaluate"):
        if not callable(getattr(base, name, None)):
            raise RuntimeError(f"PaddleFormers' SFTTrainer has no {name}(); "
                               "engines/paddleformers/hooks.py needs updating for this version")

    class OcrsftTrainer(base):
        _ocrsft_base = base

        def get_train_dataloader(self, *args, **kwargs):
            self._meter = DataMeter(self.data_args.max_seq_len)
            collate = self.data_collator
            self.data_collator = self._meter.wrap(collate)  # the train loader only, not eval
            try:
                return super().get_train_dataloader(*args, **kwargs)
            finally:
                self.data_collator = collate

        def log(self, logs, **kwargs):
            meter = getattr(self, "_meter", None)
            seen = meter.summary() if meter and "loss" in logs else {}
            if seen:
                logs["fill"] = seen["fill"]
                logs["samples_per_sequence"] = seen["samples_per_sequence"]
            return super().log(logs, **kwargs)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(StartStep())

        def evaluate(self, *args, **kwargs):
            metrics = super().evaluate(*args, **kwargs)
            if generation and self.is_world_process_zero():  # decoded once, not once per rank
                if getattr(self, "_gen_eval", None) is None:
                    from engines.paddleformers.eval_generation import GenerationEval

                    log = Path(run_dir) / "eval_generation.jsonl"
                    self._gen_eval = GenerationEval(**generation, log=log)
                extra = {f"eval_{k}": v for k, v in self._gen_eval(self.model, self.state.global_step).items()}
                print(f"eval: rank {self.args.process_index} decoded {len(self._gen_eval.items)} "
                      f"samples at step {self.state.global_step}", flush=True)
                if extra:
                    self.log(extra)
                    metrics.update(extra)
            return metrics

        def train(self, *args, **kwargs):
            start = time.perf_counter()
            result = super().train(*args, **kwargs)
            meter = getattr(self, "_meter", None)
            steps = self.state.global_step - self.state._ocrsft_start_step
            micro = steps * self.args.gradient_accumulation_steps  # micro-batches trained, per rank
            # The loader prefetches, so the counts run ahead of training; the overlap of the
            # ranks is measured on the micro-batches the steps really consumed.
            consumed = meter.batches[:micro] if meter and len(meter.batches) >= micro else None
            seen = all_ranks(meter.summary() if meter else {}, consumed)
            if seen and self.is_world_process_zero():
                seconds = time.perf_counter() - start
                # tokens/s: the mean per sequence times the sequences the steps consumed,
                # on every rank.
                used = (steps * self.args.per_device_train_batch_size
                        * self.args.gradient_accumulation_steps * len(seen.get("ranks", [0])))
                write_json(Path(run_dir) / "data_seen.json", {
                    **seen, "packing": bool(self.data_args.packing), "train_seconds": seconds,
                    "steps": steps,
                    "tokens_per_second": seen["tokens"] / seen["sequences"] * used / seconds})
            return result

    workflow.SFTTrainer = OcrsftTrainer


def all_ranks(summary: dict, consumed: list[list[int]] | None) -> dict:
    """One rank's counts, or every rank's summed (with each rank's share) under several workers.

    `consumed`: sample fingerprints of the micro-batches this rank trained on (None when
    this process did not see them all)."""
    import paddle.distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return summary
    gathered: list = []
    dist.all_gather_object(gathered, (summary, consumed))
    shares = [s for s, _ in gathered]
    if not all(shares):
        return {}
    totals = {k: sum(s[k] for s in shares) for k in ("sequences", "samples", "tokens")}
    overlap = None
    if all(c is not None for _, c in gathered):
        owners: dict[int, set] = {}
        for rank, (_, batches) in enumerate(gathered):
            for f in (f for b in batches for f in b):
                owners.setdefault(f, set()).add(rank)
        overlap = sum(len(r) > 1 for r in owners.values())
    return {**totals, "max_seq_len": summary["max_seq_len"],
            "samples_per_sequence": totals["samples"] / totals["sequences"],
            "fill": totals["tokens"] / (totals["sequences"] * summary["max_seq_len"]),
            "ranks": [{k: s[k] for k in ("sequences", "samples", "tokens")} for s in shares],
            # of the samples the steps trained on, those more than one rank saw (0: disjoint
            # shards, unless the data repeats a sample or the steps ran past one epoch)
            "samples_on_several_ranks": overlap,
            "trained_samples_per_rank": [None if c is None else sum(map(len, c)) for _, c in gathered]}
