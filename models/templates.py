"""Chat templates, the one home: the PyTorch bridge's table (TEMPLATES) and the
PaddleFormers training template for the PaddleOCR-VL versions its 1.2.0 release lacks.

The bridge frames each turn with a `Template` from TEMPLATES (a recipe's `template:`
names one, otherwise the model family's default).

PaddleFormers 1.2.0 registers `paddleocr_vl` (v1: `User: {content}\nAssistant: `).
PaddleOCR-VL-1.5 and 1.6 are served with a newline after `Assistant:`; PaddleFormers'
1.5 best practice (examples/best_practices/PaddleOCR-VL-1.5/region_ocr.md) has users
save a `paddleocr_vl_v15` template file and pass `custom_register_path`. ocrsft
registers that template itself, the same way (PaddleFormers' `register_template`),
so a recipe needs only `template: paddleocr_vl_v15`. It differs from v1 in the user
slot alone and reuses v1's image plugin, so `ocr_augmentation` switches it too.
A recipe that still names its own custom_register_path file overrides this.
"""
from __future__ import annotations

from dataclasses import dataclass

from samples.image_tokens import IMAGE_TOKEN


@dataclass(frozen=True)
class Template:
    """How one turn is framed. `{}` is the prompt (images first) or the answer."""
    name: str
    user: str
    answer: str
    start: str = ""          # once, before the first turn
    system: str = ""         # framing of an optional system prompt
    stop: str = ""           # the token generation stops on


TEMPLATES = {t.name: t for t in (
    Template("chatml", user="<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
             answer="{}<|im_end|>\n", system="<|im_start|>system\n{}<|im_end|>\n",
             stop="<|im_end|>"),
    Template("paddleocr_vl", start="<|begin_of_sentence|>", user="User: {}\nAssistant: ",
             answer="{}</s>", stop="</s>"),
    Template("llama3", start="<|begin_of_text|>",
             user="<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n",
             answer="{}<|eot_id|>",
             system="<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>", stop="<|eot_id|>"),
)}


V15 = "paddleocr_vl_v15"


def register() -> None:
    """Idempotent; call before PaddleFormers builds a dataset."""
    from paddleformers.datasets.template.formatter import EmptyFormatter, StringFormatter
    from paddleformers.datasets.template.mm_plugin import get_mm_plugin
    from paddleformers.datasets.template.template import TEMPLATES, register_template

    if V15 in TEMPLATES:
        return
    v1 = TEMPLATES["paddleocr_vl"]
    register_template(
        name=V15,
        format_user=StringFormatter(slots=["User: {{content}}\nAssistant:\n"]),
        format_assistant=StringFormatter(slots=["{{content}}"]),
        format_system=StringFormatter(slots=["{{content}}\n"]),
        format_prefix=EmptyFormatter(slots=["<|begin_of_sentence|>"]),
        chat_sep=v1.chat_sep,
        mm_plugin=get_mm_plugin(name="paddleocr_vl", image_token=IMAGE_TOKEN),
    )
