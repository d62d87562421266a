"""PaddleFormers' decoded eval during training: the model being trained reads the first
N validation samples at every evaluation (`eval_generation_samples: N`).

Prompts are framed by the model folder's own chat template, the one paddlex
serves with, so the number predicts what `ocrsft infer` will measure. What is
scored and logged, and under which names, is evaluation/during_training.py's.
"""
from __future__ import annotations

from pathlib import Path

from evaluation.during_training import family_metrics
from evaluation.evaluate import Scoring, main_key, score_one, task_of
from samples.jsonl import dumps
from samples.sample import requests_from


class GenerationEval:
    def __init__(self, model_dir: str | Path, data: str | Path, samples: int,
                 max_new_tokens: int = 64, log: str | Path | None = None):
        from paddleformers.transformers import AutoProcessor
        from PIL import Image

        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        if not getattr(self.processor, "chat_template", None):
            raise RuntimeError(f"{model_dir} has no chat_template.jinja; eval_generation_samples "
                               "needs the template the model is served with")
        self.eos = self.processor.tokenizer.convert_tokens_to_ids("</s>")
        self.max_new_tokens = max_new_tokens
        self.log = Path(log) if log else None
        self.items = []  # (id, model inputs, request, family): processed once, decoded every evaluation
        # Root "/": the trainer reads these paths as written, absolute or relative to the
        # JSONL, so decoding reads the very images the eval loss is computed on.
        for req in requests_from(Path(data), Path("/")):
            if len(self.items) == samples:
                break
            if req.error:
                raise RuntimeError(f"eval_generation_samples: {req.error}")
            if not req.image:
                continue
            with Image.open(req.image) as im:
                inputs = self.processor(text=[self.frame(req.prompt)], images=[im.convert("RGB")],
                                        return_tensors="pd")
            self.items.append((req.id, inputs, req, task_of({"prompt": req.prompt}, "auto")))

    def frame(self, prompt: str) -> str:
        turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)

    def __call__(self, model, step: int = 0) -> dict:
        import paddle

        was_training = model.training
        model.eval()
        rows, read = [], []
        try:
            with paddle.no_grad():
                for sid, inputs, req, family in self.items:
                    out = model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         do_sample=False, eos_token_id=self.eos)
                    ids = out[0] if isinstance(out, (tuple, list)) else out  # paddle: (ids, scores)
                    said = self.processor.tokenizer.decode(ids[0].tolist(), skip_special_tokens=True).strip()
                    row = {"family": family, "reference_html": req.reference_html}
                    rows.append(row | score_one(family, said, req.reference, row, Scoring()))
                    main = main_key(family, [rows[-1]])
                    read.append({"step": step, "id": sid, "family": family, "reference": req.reference,
                                 "prediction": said, main: rows[-1][main]})
        finally:
            if was_training:  # LoRAModel.train() takes no mode argument
                model.train()
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.writelines(dumps(r) + "\n" for r in read)
        return family_metrics(rows)
