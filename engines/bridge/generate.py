"""Greedy generation with a bridge model folder (what `ocrsft infer` calls for one).

The prompt is framed exactly as in training (same Codec and template, read from
the folder's `ocrsft_bridge.json` when `ocrsft export` wrote one), so a model
answers in the shape it learned:

    p = open_predictor(Path("runs/x/export"))
    p("OCR:", "/data/line.png")   ->  "12345"
    p.many([("OCR:", "a.png"), ("OCR:", "b.png")])   ->  ["123", "45"]   (one left-padded batch)

`device`: auto | cpu | gpu:N (training/device.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from engines.bridge import families, runtime
from engines.bridge.data import Codec, load_image

META = "ocrsft_bridge.json"


def is_bridge_model(model_dir: Path) -> bool:
    """A folder `ocrsft export` wrote from a torch run (or any bridge family folder)."""
    model_dir = Path(model_dir)
    if (model_dir / META).is_file():
        return True
    cfg = model_dir / "config.json"
    if not cfg.is_file():
        return False
    model_type = json.loads(cfg.read_text()).get("model_type")
    return any(model_type in f.model_types for f in families.FAMILIES.values()
               if f.name != "paddleocr_vl")


class Predictor:
    def __init__(self, model_dir: Path, max_new_tokens: int = 256, device: str = "auto"):
        import torch

        from training.device import torch_device

        model_dir = Path(model_dir)
        meta = json.loads((model_dir / META).read_text()) if (model_dir / META).is_file() else {}
        self.fam, self.model, processor = families.load(model_dir)
        self.model.eval()
        self.codec = Codec(self.fam, processor, meta.get("template"), meta.get("system_prompt"),
                           meta.get("max_image_size"))
        self.max_new_tokens = max_new_tokens
        tok = self.codec.tokenizer
        stop = tok.convert_tokens_to_ids(self.codec.template.stop) if self.codec.template.stop else None
        self.stop = sorted({i for i in (stop, tok.eos_token_id) if isinstance(i, int) and i >= 0
                            and i != tok.unk_token_id})
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else (self.stop or [0])[0]
        self.device = torch.device(torch_device(device))
        self.model.to(self.device)

    def encoded(self, prompt: str, image: str | None) -> tuple[list[int], dict, dict]:
        images = [load_image(image, self.codec.max_image_size)] if image else []
        return self.codec.encode_prompt(self.codec.prompt_text(prompt, len(images), first=True), images)

    def batch_inputs(self, encoded: list[tuple[list[int], dict, dict]]) -> dict:
        """Left-padded (generation continues every row from its last real token)."""
        import torch

        from engines.bridge.data import cat_padded

        width = max(len(ids) for ids, _, _ in encoded)
        ids = torch.full((len(encoded), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        extras = {k: torch.zeros((len(encoded), width), dtype=torch.long)
                  for _, per_token, _ in encoded for k in per_token}
        for row, (row_ids, per_token, _) in enumerate(encoded):
            ids[row, width - len(row_ids):] = torch.tensor(row_ids)
            mask[row, width - len(row_ids):] = 1
            for k, v in per_token.items():
                extras[k][row, width - len(row_ids):] = torch.tensor(v)
        out = {"input_ids": ids, "attention_mask": mask, **extras}
        for k in {k for _, _, t in encoded for k in t}:
            out[k] = cat_padded([t[k] for _, _, t in encoded if k in t])
        return {k: v.to(self.device) for k, v in out.items()}

    def inputs(self, prompt: str, image: str | None) -> dict:
        return self.batch_inputs([self.encoded(prompt, image)])

    def many(self, requests: list[tuple[str, str | None]]) -> list[str]:
        """Greedy answers for (prompt, image) pairs, generated as one batch."""
        import torch

        inputs = self.batch_inputs([self.encoded(p, im) for p, im in requests])
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      eos_token_id=self.stop or None, pad_token_id=self.pad)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [self.codec.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    def __call__(self, prompt: str, image: str | None = None) -> str:
        return self.many([(prompt, image)])[0]


def open_predictor(model_dir: Path, max_new_tokens: int = 256, device: str = "auto"):
    """A Predictor here, or in a fresh interpreter when paddleformers hid torch in this one."""
    return runtime.construct(Predictor, Path(model_dir), max_new_tokens, device)


def predict(model_dir: Path, samples: Iterable[dict], max_new_tokens: int = 256) -> Iterator[str]:
    """One prediction per {"prompt": str, "image": path or None}, in order."""
    predictor = open_predictor(model_dir, max_new_tokens)
    try:
        for sample in samples:
            yield predictor(sample["prompt"], sample.get("image"))
    finally:
        if isinstance(predictor, runtime.Remote):
            predictor.close()
