r"""`messages`: the ms-swift / LLaMA-Factory `messages` + `images` format, both directions.

    input (LLaMA-Factory data/mllm_demo.json, first item; a JSON array or JSONL):
        {"messages": [{"role": "user", "content": "<image>Who are they?"},
                      {"role": "assistant", "content": "They're Kane and Gretzka from Bayern Munich."},
                      {"role": "user", "content": "What are they doing?<image>"},
                      {"role": "assistant", "content": "They are celebrating on the soccer field."}],
         "images": ["mllm_demo_data/1.jpg", "mllm_demo_data/1.jpg"]}

    >>> from converters.registry import example
    >>> example("messages", SHARED / "sharegpt_messages/mllm_demo.json")
    {"image_info": [{"matched_text_index": 0, "image_url": "mllm_demo_data/1.jpg"},
                    {"matched_text_index": 2, "image_url": "mllm_demo_data/1.jpg"}],
     "text_info": [{"text": "Who are they?", "tag": "mask"},
                   {"text": "They're Kane and Gretzka from Bayern Munich.", "tag": "no_mask"},
                   {"text": "What are they doing?", "tag": "mask"},
                   {"text": "They are celebrating on the soccer field.", "tag": "no_mask"}]}

`content` may also be OpenAI-style typed parts ({"type": "text"|"image_url", "value": ...}).
The n-th `<image>` tag takes the n-th image; tags and images must match in
number (no tags at all: every image goes with the first turn). ERNIEKit
places an image before its turn's text, so a tag's position inside a turn
is not kept. The other direction, `to_messages`, is `ocrsft convert --emit
messages`, and PaddleFormers reads it with `train_dataset_type: messages`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from converters.registry import Converter, Record, json_records
from samples.errors import SampleError
from samples.jsonl import load_json_item

IMAGE_TAG = "<image>"
USER_ROLES = {"user", "human"}
ASSISTANT_ROLES = {"assistant", "gpt", "bot", "model"}


def strip_image_tags(text: str) -> tuple[str, int]:
    """Remove `<image>` tags (and the newline LLaVA puts beside one); return (text, count)."""
    n = text.count(IMAGE_TAG)
    for pattern in (IMAGE_TAG + "\n", "\n" + IMAGE_TAG, IMAGE_TAG):
        text = text.replace(pattern, "")
    return text, n


def turns_to_sample(turns: list[tuple[str, str, int]], images: list[str],
                    system: str = "") -> dict:
    """[(role, text, inline image count)] + images -> an ERNIEKit sample.

    Shared by `messages` and `llava`. Roles must alternate user/assistant,
    starting with the user and ending with the assistant.
    """
    if not turns:
        raise SampleError("bad_turns: no conversation turns")
    text_info, image_info, tags = [], [], []
    for i, (role, text, inline) in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        kind = "user" if role in USER_ROLES else "assistant" if role in ASSISTANT_ROLES else None
        if kind is None:
            raise SampleError(f"bad_role: turn {i} has role {role!r}")
        if kind != want:
            raise SampleError(f"bad_turns: turn {i} is {kind}, expected {want} (turns must alternate)")
        if not isinstance(text, str):
            raise SampleError(f"bad_turns: turn {i} content is not text")
        text, n = strip_image_tags(text)
        n += inline
        if n and kind == "assistant":
            raise SampleError(f"bad_image_tag: turn {i} is an assistant turn with an image")
        tags += [len(text_info)] * n
        text_info.append({"text": text.strip() if kind == "user" else text,
                          "tag": "mask" if kind == "user" else "no_mask"})
    if len(turns) % 2:
        raise SampleError("bad_turns: the conversation ends with a user turn")
    if not tags:
        tags = [0] * len(images)
    if len(tags) != len(images):
        raise SampleError(f"image_count: {len(tags)} <image> tags but {len(images)} images")
    for idx, url in zip(tags, images):
        if not isinstance(url, str):
            raise SampleError(f"bad_image: image path {url!r} is not a string")
        image_info.append({"matched_text_index": idx, "image_url": url})
    sample = {"image_info": image_info, "text_info": text_info}
    if system:
        sample["system"] = system
    return sample


def image_list(item: dict, key: str) -> list:
    """`images` / `image` as a list: absent -> [], one path -> [path]."""
    images = item.get(key) or []
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list):
        raise SampleError(f"bad_shape: '{key}' must be a string or a list")
    return images


def typed_content(content: list) -> tuple[str, list[str]]:
    """OpenAI-style parts -> (text, images in order)."""
    text, images = [], []
    for part in content:
        if not isinstance(part, dict):
            raise SampleError("bad_content: a content part is not an object")
        kind = part.get("type")
        value = part.get("value", part.get(kind))
        if kind == "text":
            text.append(value if isinstance(value, str) else part.get("text", ""))
        elif kind in ("image", "image_url"):
            images.append(value.get("url") if isinstance(value, dict) else value)
        else:
            raise SampleError(f"bad_content: unknown part type {kind!r}")
    return "".join(t for t in text if isinstance(t, str)), images


def to_messages(sample: dict) -> dict:
    """ERNIEKit sample -> {"messages": [...], "images": [...]} (`<image>` leads its turn)."""
    by_turn: dict[int, list[str]] = {}
    for im in sample.get("image_info", []):
        by_turn.setdefault(im.get("matched_text_index", 0), []).append(im["image_url"])
    messages, images = [], []
    if sample.get("system"):
        messages.append({"role": "system", "content": sample["system"]})
    for i, t in enumerate(sample["text_info"]):
        urls = by_turn.get(i, [])
        images += urls
        messages.append({"role": "user" if t["tag"] == "mask" else "assistant",
                         "content": IMAGE_TAG * len(urls) + t["text"]})
    out = {"messages": messages}
    if images:
        out["images"] = images
    return out


class ConversationConverter(Converter):
    """Shared by `messages` and `llava`: JSON array or JSONL items holding a turn list."""

    TURNS_KEY = ""

    def records(self, path: Path) -> Iterator[Record]:
        return json_records(path)

    def load(self, record: Record) -> dict:
        item = load_json_item(record.raw)
        if not isinstance(item, dict) or not isinstance(item.get(self.TURNS_KEY), list):
            raise SampleError(f"bad_shape: expected an object with a '{self.TURNS_KEY}' list")
        return item


class Messages(ConversationConverter):
    TURNS_KEY = "messages"

    def convert(self, record: Record) -> dict:
        item = self.load(record)
        images = image_list(item, "images")
        turns, system, inline_images = [], "", []
        for i, m in enumerate(item["messages"]):
            if not isinstance(m, dict):
                raise SampleError(f"bad_shape: message {i} is not an object")
            role, content = m.get("role"), m.get("content")
            if isinstance(content, list):
                content, found = typed_content(content)
                inline_images += found
            else:
                found = []
            if role == "system" and i == 0 and isinstance(content, str):
                system = content
                continue
            turns.append((role, content, len(found)))
        if inline_images and images:
            raise SampleError("bad_shape: images both inline and in 'images'")
        return turns_to_sample(turns, images or inline_images, system)
