"""`ocrsft infer DIR --data VAL.jsonl -o PRED.jsonl`: predict every sample, resumably.

Each sample is sent with its own prompt (`OCR:`, `Table Recognition:`, ...).
`--via native` (default) calls paddlex's model directly and keeps the raw
output, which is what a metric should score. `--via doc-parser` goes through
the `paddleocr doc_parser` pipeline (layout detection off, the whole image one
block), which post-processes text as users see it in production; it is also
the path to remote servers (`--backend vllm-server --server-url URL`).

Output rows (one per input sample, in input order):
    {"id", "task", "prompt", "image", "reference", "prediction", "error"}
A sample that fails (corrupt image, model error) becomes a row with `error`
set; the run goes on. Rows already in the output are skipped on a rerun.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from converters.errors import SampleError, UserError
from converters.jsonl import dumps, iter_jsonl, iter_lines
from converters.sample import resolve_image
from converters.tasks import task_for_prompt
from erniekit_ext import model_folder

BACKENDS = ("native", "vllm-server", "sglang-server", "fastdeploy-server")


@dataclass
class Request:
    id: str
    prompt: str
    image: str | None
    reference: str
    error: str | None = None


def requests_from(data: Path, image_root: Path) -> Iterator[Request]:
    """One request per ERNIEKit sample: first image, first prompt, first answer."""
    for line, obj in iter_jsonl(data):
        sid = str(obj.get("id") or hashlib.sha1(dumps(obj).encode()).hexdigest()[:16])
        texts = obj.get("text_info") or [{}]
        prompt = texts[0].get("text", "")
        reference = texts[1].get("text", "") if len(texts) > 1 else ""
        images = obj.get("image_info") or []
        req = Request(sid, prompt, None, reference)
        if images:
            try:
                req.image = str(resolve_image(images[0].get("image_url", ""), image_root,
                                              base=data.parent))
            except SampleError as e:
                req.error = f"{data}:{line}: {e.reason}"
        yield req


def load_native(model_dir: Path):
    """paddlex's PaddleOCR-VL predictor; also the export's proof that a folder loads."""
    model_folder.check_model_folder(model_dir, for_serving=True)
    from paddlex import create_model

    return create_model(model_folder.PADDLEX_MODEL_NAME, model_dir=str(model_dir), device="cpu")


class NativePredictor:
    def __init__(self, model_dir: Path, max_new_tokens: int):
        self.model = load_native(model_dir)
        self.max_new_tokens = max_new_tokens

    def __call__(self, req: Request) -> str:
        out = next(iter(self.model.predict([{"image": req.image, "query": req.prompt}],
                                           max_new_tokens=self.max_new_tokens)))
        return out["result"]


class DocParserPredictor:
    """The `paddleocr doc_parser` pipeline, v1, one block per image."""

    def __init__(self, model_dir: Path | None, max_new_tokens: int, backend: str,
                 server_url: str | None, concurrency: int):
        from paddleocr import PaddleOCRVL

        kwargs = dict(pipeline_version="v1", vl_rec_model_name=model_folder.PADDLEX_MODEL_NAME,
                      use_layout_detection=False, device="cpu")
        self.pixels = {}
        if backend == "native":
            kwargs["vl_rec_model_dir"] = str(model_folder.check_model_folder(model_dir, True))
            # The pipeline resizes blocks to its own 112896..1003520 pixels unless told;
            # serve at the sizes the model was trained on.
            pre = json.loads((Path(model_dir) / "preprocessor_config.json").read_text())
            self.pixels = {k: pre[k] for k in ("min_pixels", "max_pixels") if k in pre}
        else:
            kwargs.update(vl_rec_backend=backend, vl_rec_server_url=server_url,
                          vl_rec_max_concurrency=concurrency)
        self.pipeline = PaddleOCRVL(**kwargs)
        self.max_new_tokens = max_new_tokens

    def __call__(self, req: Request) -> str:
        task = task_for_prompt(req.prompt)
        label = task.prompt_label if task and task.prompt_label else "ocr"
        res = next(iter(self.pipeline.predict(req.image, prompt_label=label,
                                              max_new_tokens=self.max_new_tokens, **self.pixels)))
        blocks = res["parsing_res_list"]
        return "\n".join(getattr(b, "content", None) or b.get("block_content", "")
                         if isinstance(b, dict) else b.content for b in blocks)


def done_ids(out: Path) -> set[str]:
    if not out.is_file():
        return set()
    ids = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError):
            continue  # a torn last line from a killed run is simply redone
    return ids


def predict_file(model_dir: Path | None, data: Path, out: Path, *, via: str = "native",
                 backend: str = "native", server_url: str | None = None, concurrency: int = 8,
                 max_new_tokens: int = 256, image_root: Path | None = None,
                 progress: bool = True) -> dict:
    data = Path(data)
    image_root = Path(image_root) if image_root else data.parent
    if backend != "native" and not server_url:
        raise UserError("--server-url", f"backend {backend} needs the server's URL")
    if via == "native" and backend != "native":
        via = "doc-parser"  # remote backends are reached through the pipeline
    predictor = (NativePredictor(model_dir, max_new_tokens) if via == "native" else
                 DocParserPredictor(model_dir, max_new_tokens, backend, server_url, concurrency))
    skip = done_ids(out)
    counts = {"predicted": 0, "errors": 0, "skipped": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        total = sum(1 for _ in iter_lines(data))  # a count for the bar; requests still stream
        for req in tqdm(requests_from(data, image_root), total=total, desc="infer",
                        disable=not progress):
            if req.id in skip:
                counts["skipped"] += 1
                continue
            prediction, error = "", req.error
            if error is None:
                try:
                    prediction = predictor(req)
                except Exception as e:  # one bad sample must not end a long run
                    error = f"{type(e).__name__}: {e}"
            task = task_for_prompt(req.prompt)
            f.write(dumps({"id": req.id, "task": task.name if task else None, "prompt": req.prompt,
                           "image": req.image, "reference": req.reference,
                           "prediction": prediction, "error": error}) + "\n")
            f.flush()
            counts["errors" if error else "predicted"] += 1
    return counts


def add_args(p) -> None:
    p.add_argument("model", type=Path, nargs="?", help="exported model folder (not needed with a server)")
    p.add_argument("--data", type=Path, required=True, help="ERNIEKit JSONL to predict")
    p.add_argument("-o", "--out", type=Path, required=True, help="predictions JSONL (appended, resumable)")
    p.add_argument("--via", choices=("native", "doc-parser"), default="native")
    p.add_argument("--backend", choices=BACKENDS, default="native")
    p.add_argument("--server-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--image-root", type=Path, help="root for relative image paths (default: the data's folder)")


def main(args) -> int:
    if args.backend == "native" and args.model is None:
        raise UserError("MODEL", "a model folder is required unless --backend names a server")
    counts = predict_file(args.model, args.data, args.out, via=args.via, backend=args.backend,
                          server_url=args.server_url, concurrency=args.concurrency,
                          max_new_tokens=args.max_new_tokens, image_root=args.image_root,
                          progress=sys.stderr.isatty())
    print(f"infer: {counts['predicted']} predicted, {counts['errors']} errors, "
          f"{counts['skipped']} already done -> {args.out}")
    return 0
