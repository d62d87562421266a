"""Copy, crop or shrink a sample's images into an output folder.

    --images-out out/images --max-side 1024
    data/imgs/a/1.jpg (3000x2000)  ->  out/images/a/1.jpg (1024x683)

The copy mirrors the image's path under the image root, so names stay
readable and a rerun writes the same files; each file is written to a
temporary name and renamed, so a killed run never leaves a truncated image.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from samples.errors import SampleError
from samples.sample import MIN_IMAGE_SIDE


def export_image(src: Path, image_root: Path, images_out: Path, max_side: int | None,
                 transform: Callable | None = None) -> tuple[Path, tuple[int, int]]:
    """Write src's (possibly transformed) copy under images_out; return (path, (w, h))."""
    from PIL import Image

    dst = images_out / src.relative_to(image_root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    try:
        with Image.open(src) as im:
            size = im.size
            out = transform(im) if transform else im
            if max_side and max(out.size) > max_side:
                scale = max_side / max(out.size)
                out = out.resize((max(1, round(out.width * scale)), max(1, round(out.height * scale))),
                                 Image.Resampling.LANCZOS)
            if out is im:  # unchanged pixels: copy the original bytes
                shutil.copyfile(src, tmp)
            else:
                if min(out.size) < MIN_IMAGE_SIDE:
                    raise SampleError(f"image_size: {src.name} becomes {out.width}x{out.height}")
                fmt = Image.registered_extensions().get(dst.suffix.lower(), "PNG")
                if fmt == "JPEG" and out.mode not in ("RGB", "L"):
                    out = out.convert("RGB")
                out.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
            size = out.size
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst, size
