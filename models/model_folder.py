"""What a PaddleOCR-VL model folder must hold, and how to make one whole.

One home for the facts in ../shared/notes/inference-facts.md: paddlex wants
exactly one `model.safetensors` with HF names and layout, plus the files below;
paddleformers wants `config.json`, the tokenizer and the weights.

The version (v1, 1.5, 1.6) is a property of the folder, read from its own files
(`detect_version`); everything that differs between versions hangs off VERSIONS:

    version  paddlex model name      doc_parser --pipeline_version  training template  prompt ends
    1        PaddleOCR-VL-0.9B       v1                             paddleocr_vl       "Assistant: "
    1.5      PaddleOCR-VL-1.5-0.9B   v1.5                           paddleocr_vl_v15   "Assistant:\n"
    1.6      PaddleOCR-VL-1.6-0.9B   v1.6                           paddleocr_vl_v15   "Assistant:\n"

The names are paddlex 3.7.2's (paddlex/inference/models/doc_vlm/constants.py,
paddlex/configs/pipelines/PaddleOCR-VL-1.5.yaml and -1.6.yaml); the 1.5 prompt
is PaddleFormers' PaddleOCR-VL-1.5 best practice
(examples/best_practices/PaddleOCR-VL-1.5/region_ocr.md: `User: {{content}}\nAssistant:\n`,
"\n after Assistant:"). paddlex serves all three with the same code; only the
model name it checks against inference.yml and the folder's chat template differ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from samples.errors import UserError


@dataclass(frozen=True)
class Version:
    name: str                # "1", "1.5", "1.6": what recipes and --version say
    paddlex_model_name: str  # inference.yml Global.model_name and --vl_rec_model_name
    pipeline_version: str    # paddleocr doc_parser --pipeline_version
    train_template: str      # PaddleFormers `template:` that builds the served prompt
    generation_prompt: str   # the text the served chat template ends a prompt with


VERSIONS = {v.name: v for v in (
    Version("1", "PaddleOCR-VL-0.9B", "v1", "paddleocr_vl", "Assistant: "),
    Version("1.5", "PaddleOCR-VL-1.5-0.9B", "v1.5", "paddleocr_vl_v15", "Assistant:\n"),
    Version("1.6", "PaddleOCR-VL-1.6-0.9B", "v1.6", "paddleocr_vl_v15", "Assistant:\n"),
)}
_BY_PADDLEX_NAME = {v.paddlex_model_name: v for v in VERSIONS.values()}
PADDLEX_MODEL_NAME = VERSIONS["1"].paddlex_model_name  # v1, kept for existing callers
TRAIN_FILES = ("config.json", "tokenizer.model", "tokenizer_config.json", "preprocessor_config.json")
SERVE_FILES = TRAIN_FILES + ("inference.yml", "chat_template.jinja", "model.safetensors",
                             "generation_config.json")


def check_local_batch(batch_size: int) -> None:
    """paddlex 3.7.2 caps its local PaddleOCR-VL at one sample per call
    (doc_vlm/constants.py PADDLEOCR_VL_LOCAL_BATCH_SIZE = 1), natively or in doc_parser."""
    if batch_size > 1:
        raise UserError("--batch-size", "paddlex predicts a local PaddleOCR-VL one sample at a "
                                        "time; batch through a server (--backend vllm-server)")


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in Path(model_dir).glob("*.safetensors") if not p.name.startswith("."))


def check_model_folder(model_dir: str | Path, for_serving: bool = False) -> Path:
    """Raise a UserError naming the first missing file; return the folder."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(str(model_dir), "model folder not found")
    for name in SERVE_FILES if for_serving else TRAIN_FILES:
        if not (model_dir / name).is_file():
            raise UserError(str(model_dir / name), "missing from the model folder")
    if not weight_files(model_dir):
        raise UserError(str(model_dir), "holds no *.safetensors weights")
    cfg = read_config(model_dir)
    if cfg.get("model_type") != "paddleocr_vl":
        raise UserError(str(model_dir / "config.json"),
                        f"model_type is {cfg.get('model_type')!r}, expected 'paddleocr_vl'")
    return model_dir


def read_config(model_dir: Path) -> dict:
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}", f"invalid JSON ({e.msg})") from None


def consolidate_safetensors(model_dir: Path) -> Path:
    """Merge sharded `model-*.safetensors` (+ index) into the one file paddlex accepts."""
    from safetensors.numpy import load_file, save_file

    model_dir = Path(model_dir)
    target = model_dir / "model.safetensors"
    shards = [p for p in weight_files(model_dir) if p != target]
    if not shards:
        return target
    tensors = {}
    if target.exists():
        tensors.update(load_file(target))
    for shard in shards:
        tensors.update(load_file(shard))
    tmp = model_dir / ".model.safetensors.part"
    save_file(tensors, tmp, metadata={"format": "pt"})
    tmp.replace(target)
    for shard in shards:
        shard.unlink()
    for leftover in ("model.safetensors.index.json", "saved_signal_0"):
        (model_dir / leftover).unlink(missing_ok=True)
    return target


def write_inference_yml(model_dir: Path, version: str = "1") -> None:
    """paddlex checks Global.model_name against --vl_rec_model_name."""
    (Path(model_dir) / "inference.yml").write_text(
        f"Global:\n  model_name: {get_version(version).paddlex_model_name}\n")


def get_version(name) -> Version:
    key = str(name).strip()
    key = {"1.0": "1", "v1": "1", "v1.5": "1.5", "v1.6": "1.6"}.get(key, key)
    if key not in VERSIONS:
        raise UserError("model_version", f"{name!r} is not one of {', '.join(VERSIONS)}")
    return VERSIONS[key]


def _inference_yml_version(model_dir: Path) -> tuple[Version | None, str]:
    path = model_dir / "inference.yml"
    if not path.is_file():
        return None, ""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError(f"{path}:{mark.line + 1}" if mark else str(path), "invalid YAML") from None
    # What paddlex itself compares with the requested name (config["Global"]["model_name"]).
    name = ((cfg or {}).get("Global") or {}).get("model_name") if isinstance(cfg, dict) else None
    if not name:
        raise UserError(str(path), "has no Global.model_name")
    if name not in _BY_PADDLEX_NAME:
        raise UserError(str(path), f"model_name {name} is no PaddleOCR-VL version paddlex serves "
                                   f"({', '.join(_BY_PADDLEX_NAME)})")
    return _BY_PADDLEX_NAME[name], f"inference.yml model_name {name}"


def _template_prompt_end(model_dir: Path) -> str | None:
    """How the folder's chat template ends the generation prompt: "Assistant: " or "Assistant:\n"."""
    path = model_dir / "chat_template.jinja"
    if not path.is_file():
        return None
    from jinja2 import Environment

    messages = [{"role": "user", "content": [{"type": "text", "text": "OCR:"}]}]
    source = path.read_text()
    try:
        text = Environment().from_string(source).render(messages=messages, add_generation_prompt=True)
    except Exception:  # a template shaped for other message layouts: read its literals instead
        for v in sorted(VERSIONS.values(), key=lambda v: not v.generation_prompt.endswith("\n")):
            if v.generation_prompt.replace("\n", "\\n") in source or v.generation_prompt in source:
                return v.generation_prompt
        return None
    return next((v.generation_prompt for v in VERSIONS.values() if text.endswith(v.generation_prompt)),
                text[-12:])


def detect_version(model_dir: str | Path, override=None) -> tuple[Version, str]:
    """(version, the evidence) from the folder's own files; `override` (recipe key
    model_version, or --version) wins. The signals, most specific first:
    inference.yml's model_name names the version outright; the chat template's
    generation prompt tells v1 ("Assistant: ") from 1.5/1.6 ("Assistant:\n").
    A folder whose two signals disagree is refused: that is the v1-template-on-1.5
    trap users report (PaddleOCR #17589, ERNIE #1440, #1442)."""
    model_dir = Path(model_dir)
    if override not in (None, "", "auto"):
        return get_version(override), "model_version set in the recipe"
    named, why = _inference_yml_version(model_dir)
    ending = _template_prompt_end(model_dir)
    if named is not None:
        if ending is not None and ending != named.generation_prompt:
            raise UserError(str(model_dir / "chat_template.jinja"),
                            f"ends the prompt with {ending!r}, but {why} is PaddleOCR-VL "
                            f"{named.name}, whose template ends it with {named.generation_prompt!r}")
        return named, why
    if ending is None:
        raise UserError(str(model_dir), "has neither inference.yml nor chat_template.jinja: cannot "
                                        "tell its PaddleOCR-VL version (set model_version)")
    matches = [v for v in VERSIONS.values() if v.generation_prompt == ending]
    if len(matches) == 1:
        return matches[0], f"chat_template.jinja ends the prompt with {ending!r}"
    if not matches:
        raise UserError(str(model_dir / "chat_template.jinja"),
                        f"ends the prompt with {ending!r}, which no PaddleOCR-VL version does")
    raise UserError(str(model_dir), f"chat_template.jinja ends the prompt with {ending!r} "
                    f"(PaddleOCR-VL {' or '.join(v.name for v in matches)}) and there is no "
                    "inference.yml to tell which; set model_version")


def check_template(template: str | None, model_dir: str | Path, override=None) -> tuple[Version, str]:
    """(version, evidence): the recipe's `template:` must build the prompt the folder's
    version is served with. Training needs only the template, so a folder that cannot
    tell 1.5 from 1.6 (no inference.yml) still trains; export asks again."""
    model_dir = Path(model_dir)
    try:
        version, why = detect_version(model_dir, override)
    except UserError as e:
        if "set model_version" not in e.reason:
            raise
        ending = _template_prompt_end(model_dir)
        fits = [v for v in VERSIONS.values() if ending in (None, v.generation_prompt)]
        if template:
            fits = [v for v in fits if v.train_template == template] or fits
        if len({v.train_template for v in fits}) != 1:
            raise
        version = fits[0]
        names = " or ".join(v.name for v in fits)
        why = (f"chat_template.jinja ends the prompt with {ending!r}: {names}, trained alike"
               if ending else f"the folder does not say; template {template} is {names}'s")
    if template and template != version.train_template:
        users = [v.name for v in VERSIONS.values() if v.train_template == template]
        owner = (f"PaddleOCR-VL {' and '.join(users)}'s template" if users
                 else "not a PaddleOCR-VL template")
        raise UserError("template", f"{template} is {owner}, but {model_dir} is PaddleOCR-VL "
                        f"{version.name} ({why}), served with a prompt ending "
                        f"{version.generation_prompt!r}: use template: {version.train_template}")
    return version, why


TRAINING_RECORD = "ocrsft_training.json"  # written by `ocrsft export`, read by `ocrsft parity`


def write_training_record(model_dir: Path, template: str | None, version: Version) -> None:
    record = {"template": template, "version": version.name,
              "paddlex_model_name": version.paddlex_model_name}
    (Path(model_dir) / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def read_training_record(model_dir: Path) -> dict:
    path = Path(model_dir) / TRAINING_RECORD
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}", f"invalid JSON ({e.msg})") from None
