"""Key-value extraction answers: the one home for how a KIE answer is written.

    {"company": "INDAH GIFT & HOME DECO", "total": "60.30"}  ->  '{"company": "INDAH GIFT & HOME DECO", "total": "60.30"}'

The answer is compact-but-readable JSON with keys in source order and
non-ASCII kept, so the model learns one stable spelling of each answer.
"""
from __future__ import annotations

import json

from samples.sample import make_sample
from samples.tasks import get_task


def kie_answer(fields: dict) -> str:
    return json.dumps(fields, ensure_ascii=False)


def kie_sample(image: str, fields: dict, full_text: str | None = None) -> dict:
    """One image -> KIE turn, preceded by an `OCR:` turn when full_text is given."""
    turns = [(get_task("ocr").prompt, full_text)] if full_text is not None else []
    turns.append((get_task("kie").prompt, kie_answer(fields)))
    return make_sample([image], turns)
