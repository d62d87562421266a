"""Read a run's TensorBoard scalars back and draw the loss curve PNG.

PaddleFormers writes events with `report_to: tensorboard` (through tensorboardX);
this reads them with TensorBoard's own reader, so what the plot shows is what
`tensorboard --logdir` shows.
"""
from __future__ import annotations

from pathlib import Path


def read_scalars(logdir: str | Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs for `tag` across every event file under logdir."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(Path(logdir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points.update({e.step: e.value for e in acc.Scalars(tag)})
    return sorted(points.items())


def plot_loss(logdir: str | Path, png: str | Path, tag: str = "train/loss",
              title: str = "training loss") -> Path | None:
    """Write the loss curve; None when the run logged no loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = read_scalars(logdir, tag)
    if not points:
        return None
    steps, values = zip(*points)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, values, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(tag)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png
