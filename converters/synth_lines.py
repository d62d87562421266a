"""Render a synthetic text-line set, written as PaddleOCR recognition labels.

    >>> render_lines(out, n=2, alphabet="0123456789", seed=1)
    out/labels.txt:
        images/000000.png<TAB>48213
        images/000001.png<TAB>7730156

The output is a real source dataset: `ocrsft convert paddleocr-rec out/labels.txt`
turns it into ERNIEKit JSONL like any user's labels. The font is DejaVu Sans
as shipped inside matplotlib, so rendering needs no system fonts or network.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from samples.jsonl import AtomicWriter


@dataclass(frozen=True)
class LineStyle:
    width: int = 140            # 28x140 px = 2x10 patches = 5 merged image tokens
    height: int = 28
    font_px: tuple[int, int] = (17, 20)
    min_len: int = 4
    max_len: int = 8
    max_x_offset: int = 12
    # Boxed layout (form fields, meter readings): one character centred in each
    # cell of this many pixels, so each 28-px image token holds one character.
    cell_px: int | None = None


def font_path(name: str = "DejaVuSans.ttf") -> Path:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: font not shipped with this matplotlib")
    return path


def render_line(text: str, style: LineStyle, rng: random.Random, font_file: Path):
    from PIL import Image, ImageDraw, ImageFont

    size = rng.randint(*style.font_px)
    font = ImageFont.truetype(str(font_file), size)
    img = Image.new("L", (style.width, style.height), 255)
    draw = ImageDraw.Draw(img)
    if style.cell_px:
        for i, ch in enumerate(text):
            left, top, right, bottom = draw.textbbox((0, 0), ch, font=font)
            x = i * style.cell_px + (style.cell_px - (right - left)) // 2 - left
            y = (style.height - (bottom - top)) // 2 - top
            draw.text((x, y), ch, font=font, fill=rng.randint(0, 60))
        return img.convert("RGB")
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    slack = max(0, style.width - (right - left) - 2)
    x = rng.randint(0, min(style.max_x_offset, slack)) - left + 1
    y = (style.height - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=rng.randint(0, 60))
    return img.convert("RGB")


def render_lines(out_dir: str | Path, n: int, alphabet: str, seed: int,
                 style: LineStyle = LineStyle(), font: str = "DejaVuSans.ttf",
                 progress: bool = True) -> Path:
    """Write n images and `labels.txt`; return the label file's path."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    font_file = font_path(font)
    labels = out_dir / "labels.txt"
    with AtomicWriter(labels) as f:
        for i in tqdm(range(n), desc=f"render {out_dir.name}", disable=not progress, unit="img"):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(style.min_len, style.max_len)))
            rel = f"images/{i:06d}.png"
            render_line(text, style, rng, font_file).save(out_dir / rel, compress_level=1)
            f.write(f"{rel}\t{text}\n")
    return labels
