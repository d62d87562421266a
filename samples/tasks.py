"""The one registry of task prompts.

Converters write these prompts, inference sends them, and evaluation reads them
back to pick a metric. The strings are PaddleOCR-VL's own block prompts, so a
model fine-tuned here keeps answering `paddleocr doc_parser` correctly.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str          # short key used on the CLI: --task ocr
    prompt: str        # the exact text of the `mask` turn
    metric: str        # which metric family evaluation/metrics applies
    prompt_label: str  # doc_parser's --prompt_label for this task ("" if none)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("ocr", "OCR:", "ocr", "ocr"),
        Task("table", "Table Recognition:", "table", "table"),
        Task("formula", "Formula Recognition:", "formula", "formula"),
        Task("chart", "Chart Recognition:", "chart", "chart"),
        Task("spotting", "Spotting:", "det", "spotting"),
        Task("seal", "Seal Recognition:", "ocr", "seal"),
        # Not PaddleOCR-VL block prompts: key-value extraction answers JSON.
        Task("kie", "Extract the key information as JSON:", "kie", ""),
        Task("det", "Detect all text and give boxes:", "det", ""),
    )
}

_BY_PROMPT = {t.prompt: t for t in TASKS.values()}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def task_for_prompt(prompt: str) -> Task | None:
    """The task whose prompt this is, or None for free-form VQA prompts."""
    return _BY_PROMPT.get(prompt.strip())
