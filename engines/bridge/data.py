"""ERNIEKit JSONL -> token ids, labels and image tensors for a bridge family.

One sample, family `llava`, template `chatml`:

    {"image_info": [{"image_url": "a.png", "matched_text_index": 0}],
     "text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "42", "tag": "no_mask"}]}

becomes two segments, the prompt through the processor (so `<image>` expands
to the tower's N image tokens) and the answer through the tokenizer:

    "<|im_start|>user\\n<image>OCR:<|im_end|>\\n<|im_start|>assistant\\n"  labels -100
    "42<|im_end|>\\n"                                                    labels = ids

Only `no_mask` text is learned. When a sample exceeds max_seq_len the cut
falls between segments or inside an answer, never inside a prompt, so an
image block is kept whole or dropped with its turn; a sample whose first
prompt alone does not fit is rejected (`too_long`), never silently cut.
Images matched to an answer index are shown with the prompt before it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from engines.bridge.families import Family
from models.templates import TEMPLATES
from samples.errors import SampleError
from samples.jsonl import iter_jsonl, write_json
from samples.sample import check_shape, resolve_image

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    per_token: dict = field(default_factory=dict)   # e.g. Qwen2-VL's mm_token_type_ids
    images: dict = field(default_factory=dict)      # processor tensors, concatenated on dim 0
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)


def load_image(path, max_side: int | None):
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except OSError as e:
        raise SampleError(f"bad_image: {Path(str(path)).name} does not decode ({e})") from None
    if max_side and max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    return im


class Codec:
    """Turns samples into Examples for one family, processor and template."""

    def __init__(self, fam: Family, processor, template: str | None = None,
                 system_prompt: str | None = None, max_image_size: int | None = None):
        self.fam = fam
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.template = TEMPLATES[template or fam.template]
        self.system_prompt = system_prompt
        self.max_image_size = max_image_size

    def prompt_text(self, text: str, n_images: int, first: bool) -> str:
        t = self.template
        head = (t.start + (t.system.format(self.system_prompt) if self.system_prompt else "")
                if first else "")
        return head + t.user.format(self.fam.image_placeholder * n_images + text)

    def encode_prompt(self, text: str, images: list) -> tuple[list[int], dict, dict]:
        """(ids, per-token extras, image tensors) for a prompt; images expand here."""
        if not images:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return ids, {}, {}
        out = self.processor(text=[text], images=images, return_tensors="pt",
                             add_special_tokens=False)
        ids = out["input_ids"][0].tolist()
        per_token = {k: v[0].tolist() for k, v in out.items()
                     if k not in ("input_ids", "attention_mask") and v.dim() == 2
                     and v.shape[1] == len(ids) and v.shape[0] == 1}
        tensors = {k: v for k, v in out.items()
                   if k not in per_token and k not in ("input_ids", "attention_mask")}
        return ids, per_token, tensors

    def encode_answer(self, text: str) -> list[int]:
        return self.tokenizer(self.template.answer.format(text), add_special_tokens=False)["input_ids"]

    def encode(self, sample: dict, base: Path, image_root: Path | None, max_len: int) -> Example:
        check_shape(sample)
        texts = sample["text_info"]
        by_prompt: dict[int, list] = {}
        for im in sample.get("image_info", []):
            idx = im.get("matched_text_index", 0)
            path = resolve_image(im["image_url"], image_root, base=base)
            by_prompt.setdefault(idx - idx % 2, []).append(load_image(path, self.max_image_size))
        ex = Example([], [])
        for i in range(0, len(texts), 2):
            ids, per_token, tensors = self.encode_prompt(
                self.prompt_text(texts[i]["text"], len(by_prompt.get(i, [])), i == 0),
                by_prompt.get(i, []))
            answer = self.encode_answer(texts[i + 1]["text"])
            room = max_len - len(ex) - len(ids)
            if room <= 0:  # this prompt (and its images) does not fit: stop before it
                if i == 0:
                    raise SampleError(f"too_long: the first prompt needs {len(ids)} tokens "
                                      f"(images included), max_seq_len is {max_len}")
                ex.truncated = True
                break
            self._append(ex, ids, [IGNORE] * len(ids), per_token)
            for k, v in tensors.items():
                ex.images.setdefault(k, []).append(v)
            if len(answer) > room:
                answer, ex.truncated = answer[:room], True
            self._append(ex, answer, answer, {})
            if ex.truncated:
                break
        ex.images = {k: cat_padded(v) for k, v in ex.images.items()}
        return ex

    @staticmethod
    def _append(ex: Example, ids, labels, per_token) -> None:
        for k in set(per_token) | set(ex.per_token):
            ex.per_token.setdefault(k, [0] * len(ex.input_ids))
            ex.per_token[k] += per_token.get(k, [0] * len(ids))
        ex.input_ids += ids
        ex.labels += list(labels)


def cat_padded(tensors: list):
    """Concatenate on dim 0, zero-padding trailing dims that differ (LLaVA-OneVision
    gives each image its own number of anyres patches; the model slices them back)."""
    import torch

    if len({t.shape[1:] for t in tensors}) > 1:
        shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
        padded = []
        for t in tensors:
            p = t.new_zeros((t.shape[0], *shape))
            p[tuple(slice(0, n) for n in t.shape)] = t
            padded.append(p)
        tensors = padded
    return torch.cat(tensors, dim=0)


def collate(batch: list[Example], pad_id: int) -> dict:
    """Right-pad ids (pad), labels (-100), masks and per-token extras (0)."""
    import torch

    n, width = len(batch), max(len(e) for e in batch)
    out = {"input_ids": torch.full((n, width), pad_id, dtype=torch.long),
           "labels": torch.full((n, width), IGNORE, dtype=torch.long),
           "attention_mask": torch.zeros((n, width), dtype=torch.long)}
    for k in {k for e in batch for k in e.per_token}:
        out[k] = torch.zeros((n, width), dtype=torch.long)
    for row, e in enumerate(batch):
        out["input_ids"][row, :len(e)] = torch.tensor(e.input_ids)
        out["labels"][row, :len(e)] = torch.tensor(e.labels)
        out["attention_mask"][row, :len(e)] = 1
        for k, v in e.per_token.items():
            out[k][row, :len(e)] = torch.tensor(v)
    for k in {k for e in batch for k in e.images}:
        out[k] = cat_padded([e.images[k] for e in batch if k in e.images])
    return out


@dataclass
class Tally:
    """Every sample read ends up used or rejected (with its reason); counts reconcile."""
    read: int = 0
    used: int = 0
    truncated: int = 0
    rejects: list = field(default_factory=list)

    def as_dict(self) -> dict:
        reasons: dict[str, int] = {}
        for r in self.rejects:
            code = r["reason"].split(":", 1)[0]
            reasons[code] = reasons.get(code, 0) + 1
        return {"read": self.read, "used": self.used, "rejected": len(self.rejects),
                "truncated": self.truncated, "reject_reasons": reasons}

    def write(self, path: Path) -> None:
        write_json(path, {**self.as_dict(), "rejects": self.rejects})


def examples(paths: Iterable[Path], codec: Codec, max_len: int, tally: Tally,
             image_root: Path | None = None) -> Iterator[Example]:
    """Stream Examples from the JSONL files; a bad sample goes into the tally, not the run.

    Image paths follow samples/sample.py's rule, as PaddleFormers resolves them (relative
    to the JSONL, absolute as written), so converter output trains on both engines alike;
    `image_root` confines them only when given."""
    for path in paths:
        for line, obj in iter_jsonl(path):
            tally.read += 1
            try:
                ex = codec.encode(obj, path.parent, Path(image_root) if image_root else None, max_len)
            except SampleError as e:
                tally.rejects.append({"file": str(path), "line": line, "reason": e.reason})
                continue
            tally.used += 1
            tally.truncated += ex.truncated
            yield ex


def length_grouped(stream: Iterable[Example], batch_size: int, seed: int,
                   buffer_batches: int = 16) -> Iterator[list[Example]]:
    """Batches of similar length (little padding), order shuffled; memory is one buffer."""
    rng = random.Random(seed)
    buffer: list[Example] = []

    def flush():
        buffer.sort(key=len)
        batches = [buffer[i:i + batch_size] for i in range(0, len(buffer), batch_size)]
        rng.shuffle(batches)
        buffer.clear()
        return batches

    for ex in stream:
        buffer.append(ex)
        if len(buffer) >= batch_size * buffer_batches:
            yield from flush()
    yield from flush()
