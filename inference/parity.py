"""`ocrsft parity DIR --data VAL.jsonl [--samples N]`: is the prompt served the prompt trained on?

A fine-tuned model reads well only when the ids it is served are, token for
token, the ids it learned from (inference-facts.md, export trap 5). This builds
the prompt of the first N samples twice, each with the real code of its side:

    trained  PaddleFormers' erniekit reader, the template the run trained with
             (recorded by `ocrsft export`; else the folder version's: `paddleocr_vl`
             for v1, `paddleocr_vl_v15` for 1.5/1.6) and its image plugin, the folder's tokenizer and processor: what
             `train_dataset_type: erniekit` + that `template:` feed the trainer
    served   paddlex's PaddleOCR-VL predictor, the one `ocrsft infer` runs: its
             processor and the folder's chat_template.jinja on {"image", "query"}

and compares everything before the answer, expanded image placeholders included:

    $ ocrsft parity runs/x/export --data val.jsonl --samples 8
    parity: 8 samples, identical
    $ ocrsft parity broken/ --data val.jsonl --samples 8           (exit 1)
    parity: 8 of 8 samples differ; first val.jsonl:1 at token 0: trained '<|begin_of_sentence|>' (3), served '<s>' (1)

The template's image augmentation is off here: its random rescale changes the
placeholder count per epoch, so the reference is the un-augmented sample.
A sample either side cannot build is reported and skipped.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

from engines.paddleformers import compat
from samples.errors import SampleError, UserError
from samples.image_tokens import IMAGE_TOKEN
from samples.jsonl import iter_jsonl


class TrainedPrompt:
    """One sample through PaddleFormers' SFT data path, as `run_sft` sets it up."""

    def __init__(self, model_dir: Path, data: Path, samples: int, template: str = "paddleocr_vl"):
        compat.apply()
        from models import templates

        templates.register()
        compat.set_template_augmentation(False)
        from paddleformers.datasets.loader import create_dataset
        from paddleformers.datasets.reader.file_reader import FileReader
        from paddleformers.datasets.template.template import get_template_and_fix_tokenizer
        from paddleformers.transformers import AutoProcessor, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        config = dict(
            tokenizer=self.tokenizer, processor=AutoProcessor.from_pretrained(str(model_dir)),
            template=template, template_backend="custom", tool_format=None,
            default_system=None, stage="VL-SFT", task_group=f"{data}#{samples}",
            task_group_prob="1.0", sub_dataset_type="erniekit", is_valid=True, packing=False,
            mix_strategy="concat", random_shuffle=False, random_seed=0,
            num_samples_each_epoch=samples,
            # No sample may be cut or dropped for length: parity looks at every prompt whole.
            max_seq_len=1 << 30)
        config["template_instance"] = get_template_and_fix_tokenizer(config)
        self.dataset = create_dataset(**config)
        # The reader's own per-line steps, called here so that a sample it would drop
        # raises instead of vanishing (and the served side stays aligned).
        self.reader = FileReader(str(data), "erniekit", template_backend="custom")
        self.convert = self.reader.convertor_map["erniekit"]

    def __call__(self, obj: dict) -> list[int]:
        example = self.reader._data_check(self.convert(copy.deepcopy(obj)))
        seq = self.dataset._process_sft_sequence(example, 1)
        if seq is None:
            raise SampleError("paddleformers drops this sample in training (see its warning)")
        # Labels are shifted left by one: label i is the target of token i + 1.
        start = next(i for i, label in enumerate(seq.labels) if label != -100) + 1
        return [int(t) for t in seq.token_ids[:start]]


class ServedPrompt:
    """The ids paddlex's predictor feeds the model for one {"image", "query"} input."""

    def __init__(self, model_dir: Path, device: str = "auto"):
        from engines.paddleformers.predict import load_native

        self.processor = load_native(model_dir, device).processor
        self.tokenizer = self.processor.tokenizer

    def __call__(self, image: str, query: str) -> list[int]:
        batch = self.processor.preprocess([{"image": image, "query": query}])
        return [int(t) for t in batch["input_ids"].tolist()[0]]


def first_difference(a: list[int], b: list[int]) -> int | None:
    pos = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return None if a == b else pos


def describe(pos: int, trained: list[int], served: list[int], t_tok, s_tok) -> str:
    def at(ids, tok):
        return (f"{tok.convert_ids_to_tokens(ids[pos])!r} ({ids[pos]})" if pos < len(ids)
                else "the end of the prompt")

    text = f"at token {pos}: trained {at(trained, t_tok)}, served {at(served, s_tok)}"
    image_id = t_tok.convert_tokens_to_ids(IMAGE_TOKEN)
    counts = trained.count(image_id), served.count(image_id)
    if counts[0] != counts[1]:
        text += f"; image placeholders: trained {counts[0]}, served {counts[1]}"
    return text


def trained_template(model_dir: Path) -> str:
    """The template the folder's weights were trained with: recorded by `ocrsft export`,
    else the one its version is trained with (model_folder.VERSIONS)."""
    from models import model_folder

    recorded = model_folder.read_training_record(model_dir).get("template")
    return recorded or model_folder.detect_version(model_dir)[0].train_template


def check(model_dir: Path, data: Path, samples: int = 8, image_root: Path | None = None,
          device: str = "auto") -> dict:
    """Compare the first `samples` samples; returns counts and the first difference found."""
    from samples.sample import requests_from

    data, model_dir = Path(data), Path(model_dir)
    if not data.is_file():
        raise UserError(str(data), "data file not found")
    served = ServedPrompt(model_dir, device)
    template = trained_template(model_dir)
    trained = TrainedPrompt(model_dir, data, samples, template)
    result = {"compared": 0, "differ": 0, "skipped": [], "first": None}
    pairs = zip(iter_jsonl(data), requests_from(data, image_root))
    for ((line, obj), req), _ in zip(pairs, range(samples)):
        where = f"{data.name}:{line}"
        if req.error:  # already names file and line
            result["skipped"].append(req.error)
            continue
        try:
            if not req.image:
                raise SampleError("no image to serve")
            a, b = trained(obj), served(req.image, req.prompt)
        except Exception as e:  # either side failing to build a sample is a skip, not a verdict
            result["skipped"].append(f"{where}: {getattr(e, 'reason', None) or e}")
            continue
        result["compared"] += 1
        pos = first_difference(a, b)
        if pos is not None:
            result["differ"] += 1
            if result["first"] is None:
                result["first"] = f"{where} " + describe(pos, a, b, trained.tokenizer,
                                                          served.tokenizer)
    return result


def add_args(p) -> None:
    p.add_argument("model", type=Path, help="exported model folder (what paddlex serves)")
    p.add_argument("--data", type=Path, required=True, help="ERNIEKit JSONL (e.g. the val split)")
    p.add_argument("--samples", type=int, default=8, help="how many samples from the top")
    p.add_argument("--image-root", type=Path, help="confine images to this folder (default: none; relative paths resolve against the data's folder)")
    p.add_argument("--device", default="auto", help="where paddlex loads the model: auto, cpu or gpu:N")


def main(args) -> int:
    if args.samples < 1:
        raise UserError("--samples", f"must be at least 1, got {args.samples}")
    r = check(args.model, args.data, args.samples, args.image_root, args.device)
    skipped = f" ({len(r['skipped'])} skipped; first {r['skipped'][0]})" if r["skipped"] else ""
    if r["differ"]:
        print(f"parity: {r['differ']} of {r['compared']} samples differ; first {r['first']}{skipped}")
        return 1
    if not r["compared"]:
        print(f"parity: no sample could be compared{skipped}", file=sys.stderr)
        return 1
    print(f"parity: {r['compared']} samples, identical{skipped}")
    return 0
