"""What a run shows while and after it trains: TensorBoard scalars, the loss PNG, data seen.

PaddleFormers writes events with `report_to: tensorboard` (through tensorboardX);
`read_scalars` reads them back with TensorBoard's own reader, so what the plot
shows is what `tensorboard --logdir` shows.

The PaddleFormers trainer hooks that count what a run is fed live with that engine
(engines/paddleformers/hooks.py).
"""
from __future__ import annotations

from pathlib import Path


def read_scalars(logdir: str | Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs for `tag` across every event file under logdir (resumes included)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(Path(logdir).rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points.update({e.step: e.value for e in acc.Scalars(tag)})
    return sorted(points.items())


def purge_after(logdir: str | Path, step: int) -> int:
    """Drop every event past `step` from the event files under logdir; returns how many.

    A run resumed from checkpoint-`step` logs steps step+1... again; TensorBoard
    would show both copies (its newer data loader does not purge orphaned steps), so
    `ocrsft train --resume` removes the orphans before the trainer starts. Each file
    is rewritten atomically under its own name (their order stays the same)."""
    import os

    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    dropped = 0
    for events in Path(logdir).rglob("events.out.tfevents.*"):
        kept, gone = [], 0
        for raw in RawEventFileLoader(str(events)).Load():
            event = event_pb2.Event.FromString(raw)
            if event.step > step and event.HasField("summary"):
                gone += 1
            else:
                kept.append(raw)
        if gone:
            tmp = events.with_name(events.name + ".purge")
            with open(tmp, "wb") as f:
                writer = RecordWriter(f)
                for raw in kept:
                    writer.write(raw)
            os.replace(tmp, events)
            dropped += gone
    return dropped


def plot_loss(logdir: str | Path, png: str | Path, tag: str = "train/loss",
              title: str = "training loss") -> Path | None:
    """Write the loss curve (with eval loss when logged); None when the run logged no loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = read_scalars(logdir, tag)
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(*zip(*points), lw=1.2, label=tag)
    evals = read_scalars(logdir, "eval/loss")
    if evals:
        ax.plot(*zip(*evals), "o-", lw=1.2, label="eval/loss")
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png
