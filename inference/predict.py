"""`ocrsft infer DIR --data VAL.jsonl -o PRED.jsonl`: predict every sample, resumably.

Each sample is sent with its own prompt (`OCR:`, `Table Recognition:`, ...).
`--via native` (default) calls the model directly and keeps the raw output,
which is what a metric should score: paddlex's predictor for a PaddleOCR-VL
folder, transformers `generate` for a PyTorch-bridge folder (LLaVA, InternVL,
Qwen2-VL, ...); the engine that serves the folder is chosen in engines/__init__.py. `--via doc-parser` goes
through the `paddleocr doc_parser` pipeline (layout detection off, the whole
image one block), which post-processes text as users see it in production.

Servers: `--backend vllm-server|sglang-server|fastdeploy-server --server-url
http://HOST:PORT/v1` sends the samples to an OpenAI-compatible server through
that pipeline, up to `--concurrency` consecutive same-prompt samples at once
(no model folder needed; given one, its min/max pixels go to vLLM).
- A request the server answers with an error (HTTP 500, ...) becomes that
  sample's error row, and the run goes on.
- A server that cannot be reached, before the run or during it, stops the run
  with one line naming `--server-url`: an error row for every remaining sample
  would be skipped as done on the rerun. Rows already written stay; rerun to resume.

Output rows (one per input sample, in input order):
    {"id", "task", "prompt", "image", "reference", "prediction", "error"}
plus "reference_html" when the sample carries its table's source HTML (for official TEDS).
A sample that fails (corrupt image, model error) becomes a row with `error`
set; the run goes on. On a rerun, rows already predicted are skipped and error
rows are retried: they are dropped from the output (rewritten atomically) and
predicted again, appended at the end (`--keep-errors` skips them instead). A run
in which every sample failed exits 1 with the first error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

import engines
from models import model_folder
from samples.errors import UserError
from samples.jsonl import dumps, iter_jsonl, iter_lines
from samples.sample import Request, requests_from
from samples.tasks import task_for_prompt

BACKENDS = ("native", "vllm-server", "sglang-server", "fastdeploy-server")


class ServerUnreachable(UserError):
    """Ends the run: every later request would fail the same way."""


def server_problem(url: str) -> str | None:
    """Why nothing answers at `url`, or None when something does (any HTTP status)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url.rstrip("/") + "/models", timeout=10).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", None) or e)
    return None


class DocParserPredictor:
    """The `paddleocr doc_parser` pipeline of the folder's version, one block per image."""

    def __init__(self, model_dir: Path | None, max_new_tokens: int, backend: str,
                 server_url: str | None, concurrency: int, device: str = "auto"):
        from paddleocr import PaddleOCRVL

        from training.device import paddle_device

        # The folder's version picks the pipeline (v1 / v1.5 / v1.6) and the model name.
        version = model_folder.detect_version(model_dir)[0] if model_dir else model_folder.VERSIONS["1"]
        kwargs = dict(pipeline_version=version.pipeline_version,
                      vl_rec_model_name=version.paddlex_model_name,
                      use_layout_detection=False, device=paddle_device(device))
        self.pixels = {}
        pre = Path(model_dir) / "preprocessor_config.json" if model_dir else None
        if backend == "native":
            kwargs["vl_rec_model_dir"] = str(model_folder.check_model_folder(model_dir, True))
        else:
            kwargs.update(vl_rec_backend=backend, vl_rec_server_url=server_url,
                          vl_rec_max_concurrency=concurrency)
        if pre and pre.is_file() and backend in ("native", "vllm-server"):
            # The pipeline resizes blocks to its own 112896..1003520 pixels unless told
            # (of the servers only vLLM takes them); serve at the sizes trained on.
            pre = json.loads(pre.read_text())
            self.pixels = {k: pre[k] for k in ("min_pixels", "max_pixels") if k in pre}
        self.pipeline = PaddleOCRVL(**kwargs)
        self.max_new_tokens = max_new_tokens
        self.server_url = server_url if backend != "native" else None
        self.batch = max(1, concurrency) if self.server_url else 1

    def parse(self, images: list[str], prompt: str) -> list[str]:
        task = task_for_prompt(prompt)
        label = task.prompt_label if task and task.prompt_label else "ocr"
        try:
            results = list(self.pipeline.predict(images, prompt_label=label,
                                                 max_new_tokens=self.max_new_tokens, **self.pixels))
        except Exception:
            problem = self.server_url and server_problem(self.server_url)
            if problem:
                raise ServerUnreachable("--server-url", f"{self.server_url} stopped answering "
                                        f"({problem}); rows so far are kept, rerun to resume")
            raise
        return ["\n".join(getattr(b, "content", None) or b.get("block_content", "")
                          if isinstance(b, dict) else b.content for b in res["parsing_res_list"])
                for res in results]

    def __call__(self, req: Request) -> str:
        return self.parse([req.image], req.prompt)[0]

    def many(self, reqs: list[Request]) -> list[str]:
        """One pipeline call, so the requests reach the server together."""
        return self.parse([r.image for r in reqs], reqs[0].prompt)


def answer(predictor, reqs: list[Request]) -> list[tuple[str, str | None]]:
    """(prediction, error) per request: one batched call when the predictor has one; if
    that fails, the chunk is redone one by one to find which sample failed."""
    many = getattr(predictor, "many", None)
    if many and len(reqs) > 1:
        try:
            return [(p, None) for p in many(reqs)]
        except ServerUnreachable:
            raise
        except Exception:
            pass
    return one_by_one(predictor, reqs)


def one_by_one(predictor, reqs: list[Request]) -> list[tuple[str, str | None]]:
    out = []
    for req in reqs:
        try:
            out.append((predictor(req), None))
        except ServerUnreachable:
            raise
        except Exception as e:  # one bad sample must not end a long run
            out.append(("", f"{type(e).__name__}: {e}"))
    return out


def chunks(reqs: Iterator[Request], size: int) -> Iterator[list[Request]]:
    """Consecutive requests with one prompt, at most `size`: rows keep input order."""
    chunk: list[Request] = []
    for req in reqs:
        if chunk and (len(chunk) == size or req.prompt != chunk[0].prompt):
            yield chunk
            chunk = []
        chunk.append(req)
    if chunk:
        yield chunk


def open_predictor(model_dir: Path | None, via: str, backend: str, server_url: str | None,
                   concurrency: int, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    if batch_size < 1:
        raise UserError("--batch-size", f"must be at least 1, got {batch_size}")
    if backend != "native":
        problem = server_problem(server_url)
        if problem:
            raise ServerUnreachable("--server-url", f"cannot reach {server_url} ({problem})")
        return DocParserPredictor(model_dir, max_new_tokens, backend, server_url, concurrency, device)
    if model_dir is None:
        raise UserError("MODEL", "a model folder is required unless --backend names a server")
    if via == "native":
        return engines.predictor(model_dir, max_new_tokens, device, batch_size)
    if engines.engine_of_model(model_dir) == "torch":
        raise UserError("--via", f"{model_dir} is a PyTorch-bridge model, which the "
                                 "doc_parser pipeline cannot serve; use --via native")
    model_folder.check_local_batch(batch_size)
    return DocParserPredictor(model_dir, max_new_tokens, backend, server_url, concurrency, device)


def done_ids(out: Path, retry_errors: bool = True) -> set[str]:
    """Ids a rerun skips. With `retry_errors`, error rows (and a torn last line) are
    removed from `out` first, so their samples are predicted again, once."""
    from samples.jsonl import AtomicWriter

    if not out.is_file():
        return set()
    ids, dropped, kept = set(), 0, []
    with open(out, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
                rid = row["id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                dropped += 1  # a torn last line from a killed run is simply redone
                continue
            if row.get("error") and retry_errors:
                dropped += 1
                continue
            ids.add(rid)
            kept.append(line if line.endswith("\n") else line + "\n")
    if dropped:
        with AtomicWriter(out) as w:
            w.writelines(kept)
    return ids


DEFAULT_MAX_NEW_TOKENS = 256


def scan(data: Path, image_root: Path | None = None) -> tuple[int, int]:
    """(samples, the longest reference answer's UTF-8 bytes), in the one pass made before
    predicting: the progress bar's total and the default budget's measure."""
    n = longest = 0
    for req in requests_from(data, image_root):
        n, longest = n + 1, max(longest, len(req.reference.encode("utf-8")))
    return n, longest


def budget_for(longest: int) -> int:
    """The default budget: 256, or more when a reference answer is longer. A reference's
    UTF-8 bytes + EOS bound its tokens with any tokenizer (byte fallback included), so a
    JSON answer is never cut before its closing brace by the budget alone."""
    return max(DEFAULT_MAX_NEW_TOKENS, longest + 1)


def covering_max_new_tokens(data: Path, image_root: Path | None = None) -> int:
    return budget_for(scan(data, image_root)[1])


def predict_file(model_dir: Path | None, data: Path, out: Path, *, via: str = "native",
                 backend: str = "native", server_url: str | None = None, concurrency: int = 8,
                 max_new_tokens: int | None = None, image_root: Path | None = None,
                 progress: bool = True, retry_errors: bool = True, device: str = "auto",
                 batch_size: int = 1) -> dict:
    data = Path(data)
    if backend != "native" and not server_url:
        raise UserError("--server-url", f"backend {backend} needs the server's URL")
    if max_new_tokens is None:  # the budget's pass also counts, for the bar
        total, longest = scan(data, image_root)
        max_new_tokens = budget_for(longest)
    else:
        total = sum(1 for _ in iter_lines(data))
    predictor = open_predictor(model_dir, via, backend, server_url, concurrency, max_new_tokens,
                               device, batch_size)
    skip = done_ids(out, retry_errors)
    counts = {"predicted": 0, "errors": 0, "skipped": 0}

    def pending() -> Iterator[Request]:
        for req in tqdm(requests_from(data, image_root), total=total, desc="infer",
                        disable=not progress):
            if req.id in skip:
                counts["skipped"] += 1
            else:
                yield req

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(out, "a", encoding="utf-8") as f:
            for chunk in chunks(pending(), getattr(predictor, "batch", 1)):
                sendable = [r for r in chunk if r.error is None]
                answers = iter(answer(predictor, sendable))
                for req in chunk:
                    prediction, error = ("", req.error) if req.error else next(answers)
                    task = task_for_prompt(req.prompt)
                    f.write(dumps({"id": req.id, "task": task.name if task else None,
                                   "prompt": req.prompt, "image": req.image,
                                   "reference": req.reference, "prediction": prediction,
                                   "error": error}
                                  | ({"reference_html": req.reference_html} if req.reference_html else {}))
                            + "\n")
                    counts["errors" if error else "predicted"] += 1
                f.flush()
    finally:
        getattr(predictor, "close", lambda: None)()
    return counts


def add_args(p) -> None:
    p.add_argument("model", type=Path, nargs="?", help="exported model folder (not needed with a server)")
    p.add_argument("--data", type=Path, required=True, help="ERNIEKit JSONL to predict")
    p.add_argument("-o", "--out", type=Path, required=True, help="predictions JSONL (appended, resumable)")
    p.add_argument("--via", choices=("native", "doc-parser"), default="native")
    p.add_argument("--backend", choices=BACKENDS, default="native")
    p.add_argument("--server-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (server backends)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"generation budget (default: {DEFAULT_MAX_NEW_TOKENS}, or the longest "
                        "reference answer's UTF-8 bytes + 1 when longer)")
    p.add_argument("--keep-errors", action="store_true",
                   help="on a rerun, skip samples whose earlier row is an error "
                        "(default: retry them)")
    p.add_argument("--image-root", type=Path, help="confine images to this folder (default: none; relative paths resolve against the data's folder)")
    p.add_argument("--device", default="auto", help="auto (a GPU when paddle or torch sees one), "
                   "cpu or gpu:N")
    p.add_argument("--batch-size", type=int, default=1,
                   help="samples per generate call (PyTorch-bridge models)")


def main(args) -> int:
    if args.backend == "native" and args.model is None:
        raise UserError("MODEL", "a model folder is required unless --backend names a server")
    if args.concurrency < 1:
        raise UserError("--concurrency", f"must be at least 1, got {args.concurrency}")
    counts = predict_file(args.model, args.data, args.out, via=args.via, backend=args.backend,
                          server_url=args.server_url, concurrency=args.concurrency,
                          max_new_tokens=args.max_new_tokens, image_root=args.image_root,
                          progress=sys.stderr.isatty(), retry_errors=not args.keep_errors,
                          device=args.device, batch_size=args.batch_size)
    print(f"infer: {counts['predicted']} predicted, {counts['errors']} errors, "
          f"{counts['skipped']} already done -> {args.out}")
    if counts["errors"] and not counts["predicted"] and not counts["skipped"]:
        first = next((row for _, row in iter_jsonl(args.out) if row.get("error")), {})
        print(f"ocrsft infer: error: every sample failed; first {first.get('id')}: "
              f"{first.get('error')}", file=sys.stderr)
        return 1
    return 0
