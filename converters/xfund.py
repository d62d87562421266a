r"""`xfund`: XFUND forms in PaddleOCR's KIE label format -> key-value extraction.

    input (xfund_zh/val.json, zh_val_31.jpg, shortened here to one question and its answer):
        zh_val_31.jpg<TAB>[{"transcription": "报销人姓名", "label": "question", "points": [[310, 477], [502, 477], [502, 525], [310, 525]], "id": 19, "linking": [[19, 25]]},
                      {"transcription": "符山彤", "label": "answer", "points": [[751, 484], [882, 484], [882, 530], [751, 530]], "id": 25, "linking": [[19, 25]]}, ...]

    >>> from converters.registry import example
    >>> example("xfund", SHARED / "xfund_zh/val.json", image_root=SHARED / "xfund_zh/image")
    {"image_info": [{"matched_text_index": 0, "image_url": "zh_val_31.jpg"}],
     "text_info": [{"text": "Extract the key information as JSON:", "tag": "mask"},
                   {"text": "{\"报销人姓名\": \"符山彤\", \"病者姓名\": \"符志强\", ...}", "tag": "no_mask"}]}

Each `linking` [question id, answer id] gives one key and its value; a key
with several answers gets them joined by a space in label order, and a
question asked twice keeps the first key and collects the rest under
"key (2)", ... `-O with_ocr=true` adds an `OCR:` turn with every text, in label order.
"""
from __future__ import annotations

from converters.kie import kie_sample
from converters.paddleocr_det import split_label_line
from converters.registry import Converter, Record
from samples.errors import SampleError


def linked_fields(items: list) -> dict:
    by_id = {}
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("transcription"), str) \
                or isinstance(it.get("id"), bool) or not isinstance(it.get("id"), int):
            raise SampleError(f"bad_item: item {i} needs a string 'transcription' and an int 'id'")
        by_id[it["id"]] = it
    answers: dict[int, list[str]] = {}
    for it in items:
        links = it.get("linking", [])
        if not isinstance(links, list):
            raise SampleError(f"bad_link: item {it['id']} 'linking' is not a list")
        for link in links:
            if not (isinstance(link, list) and len(link) == 2 and all(x in by_id for x in link)):
                raise SampleError(f"bad_link: {link!r} does not name two items")
            q, a = (by_id[x] for x in link)
            if q.get("label") == "question" and a.get("label") == "answer" and it is q:
                answers.setdefault(q["id"], []).append(a["transcription"])
    fields: dict[str, str] = {}
    for it in items:
        if it.get("label") != "question" or it["id"] not in answers:
            continue
        key, n = it["transcription"], 2
        while key in fields:
            key, n = f"{it['transcription']} ({n})", n + 1
        fields[key] = " ".join(answers[it["id"]])
    return fields


class XFUND(Converter):
    OPTIONS = {"with_ocr": (False, "add an OCR: turn with every text of the form first")}

    def convert(self, record: Record) -> dict:
        path, items = split_label_line(record.raw)
        fields = linked_fields(items)
        if not fields:
            raise SampleError("no_fields: no linked question/answer pair")
        text = "\n".join(it["transcription"] for it in items) if self.options["with_ocr"] else None
        return kie_sample(path, fields, text)
