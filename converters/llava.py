r"""`llava`: LLaVA / InternVL conversation JSON -> multi-turn ERNIEKit samples.

    input (InternVL docs, internvl_chat_data_format.md, shortened to one round):

    >>> from converters.registry import example
    >>> example("llava", '''{"id": 2324, "image": "COCO_train2014_000000581857.jpg",
    ...   "width": 427, "height": 640, "conversations": [
    ...   {"from": "human", "value": "<image>\\nPlease provide the bounding box coordinate of the region this sentence describes: <ref>the lady with the blue shirt</ref>"},
    ...   {"from": "gpt", "value": "<ref>the lady with the blue shirt</ref><box>[[243, 469, 558, 746]]</box>"}]}''')
    {"image_info": [{"matched_text_index": 0, "image_url": "COCO_train2014_000000581857.jpg"}],
     "text_info": [{"text": "Please provide the bounding box coordinate of the region this sentence describes: <ref>the lady with the blue shirt</ref>", "tag": "mask"},
                   {"text": "<ref>the lady with the blue shirt</ref><box>[[243, 469, 558, 746]]</box>", "tag": "no_mask"}]}

`image` is a string or a list (InternVL multi-image); `<image>` tags may sit
anywhere in human turns (none: the images go with the first turn). Covers
invoice VQA, meme captions, LLaVA-Pretrain and CogVLM-SFT style data. The
input is a JSON array or JSONL; text-only items (no `image`) are kept.
"""
from __future__ import annotations

from converters.messages import ConversationConverter, image_list, turns_to_sample
from converters.registry import Record
from samples.errors import SampleError


class LLaVA(ConversationConverter):
    TURNS_KEY = "conversations"

    def convert(self, record: Record) -> dict:
        item = self.load(record)
        if item.get("video"):
            raise SampleError("unsupported_video: video samples are not converted")
        images = image_list(item, "image")
        turns, system = [], ""
        for i, c in enumerate(item["conversations"]):
            if not isinstance(c, dict):
                raise SampleError(f"bad_shape: conversations[{i}] is not an object")
            if c.get("from") == "system" and i == 0:
                system = c.get("value") or ""
                continue
            turns.append((c.get("from"), c.get("value"), 0))
        return turns_to_sample(turns, images, system if isinstance(system, str) else "")
