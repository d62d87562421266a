r"""`latex`: formula images with LaTeX labels, one `image_path<TAB>latex` per line.

    >>> from converters.registry import example
    >>> example("latex", "formulas/0001.png\tt_{n}\\in[0,\\infty]")
    {"image_info": [{"matched_text_index": 0, "image_url": "formulas/0001.png"}],
     "text_info": [{"text": "Formula Recognition:", "tag": "mask"},
                   {"text": "\\[t_{n}\\in[0,\\infty]\\]", "tag": "no_mask"}]}

Answers are display math `\[...\]` as in seed 002 (a label already wrapped
in `$$`, `$`, `\(` or `\[` is unwrapped first); `\label{...}` is dropped
since it never shows in the image. Unbalanced braces are a reject.
`-O crop_ink=true` crops each image to its ink (plus a margin) into the
images folder (`--images-out`, default OUT_images/), for full-page renders.
"""
from __future__ import annotations

from converters.registry import Converter, Record, split_image_line
from formats.latex import formula_answer
from samples.errors import SampleError
from samples.sample import make_sample
from samples.tasks import get_task

INK_THRESHOLD = 200   # grey level below which a pixel counts as ink
INK_MARGIN = 8        # px kept around the ink


def crop_to_ink(image):
    """The image cut to the bounding box of its dark pixels plus a margin."""
    from PIL import Image

    if image.mode in ("P", "PA", "LA", "RGBA"):  # transparent pages count as white
        page = Image.new("RGBA", image.size, (255, 255, 255, 255))
        page.alpha_composite(image.convert("RGBA"))
        image = page.convert("RGB")
    gray = image.convert("L")
    box = gray.point(lambda v: 255 if v < INK_THRESHOLD else 0).getbbox()
    if box is None:
        raise SampleError("blank_image: no ink to crop to")
    left, top, right, bottom = box
    return image.crop((max(0, left - INK_MARGIN), max(0, top - INK_MARGIN),
                       min(image.width, right + INK_MARGIN), min(image.height, bottom + INK_MARGIN)))


class FormulaConverter(Converter):
    """Shared by `latex` and `im2latex`: the answer rule and the ink crop."""

    OPTIONS = {"crop_ink": (False, "crop images to their ink (copies them to --images-out)")}

    def copies_images(self) -> bool:
        return self.options["crop_ink"]

    def transform_image(self, image):
        return crop_to_ink(image) if self.options["crop_ink"] else image

    def sample(self, image: str, latex: str) -> dict:
        return make_sample([image], [(get_task("formula").prompt, formula_answer(latex))])


class Latex(FormulaConverter):
    def convert(self, record: Record) -> dict:
        return self.sample(*split_image_line(record.raw, "latex"))
