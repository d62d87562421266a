"""Recipes: a YAML file plus `key=value` overrides -> the engine's keys and ocrsft's own.

A recipe is a PaddleFormers training YAML (its key names, so a recipe from
PaddleFormers' examples/best_practices works as is) plus the few ocrsft keys in
OCRSFT_KEYS, which PaddleFormers would reject and so are split off before
launch. `resolve` loads, applies overrides, splits the two, coerces values to
the types PaddleFormers declares, and refuses unknown keys and contradictions
with one line that names the key and where it was written:

    configs/x.yaml:31: learning_rte: unknown key (did you mean learning_rate?)
    override min_lr=0.1: 0.1 is above learning_rate 5e-06
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from samples.errors import UserError

ENGINES = ("paddleformers", "erniekit", "torch")
SCALES = ("keep-batch", "scale-lr")
FREEZE = ("freeze_vision", "freeze_aligner", "freeze_llm")

# ocrsft's own keys: name -> (default, what it does). Never passed to an engine.
OCRSFT_KEYS = {
    "base": (None, "a recipe (path relative to this file) this one starts from"),
    "engine": ("paddleformers", f"the trainer that runs the recipe: {', '.join(ENGINES)}"),
    "recipe_gpus": (1, "GPUs the batch and learning-rate values were tuned for (seed 002: 1)"),
    "gpus": (None, "GPUs to train on, all nodes together (default recipe_gpus; --gpus wins)"),
    "scale": ("keep-batch", "when gpus != recipe_gpus: keep-batch (keep G*B*A) or scale-lr"),
    "ocr_augmentation": (True, "the paddleocr_vl template's random image augmentation"),
    "eval_generation_samples": (0, "decode this many eval samples at each evaluation and log "
                                   "each task family's main score, eval/cer for OCR (0: off)"),
    "eval_generation_max_new_tokens": (64, "the decoding budget of eval_generation_samples"),
    "erniekit_timeout_s": (86400, "engine erniekit: stop ERNIEKit after this many seconds (it loops "
                                  "forever on a dataset whose every sample fails)"),
    "model_version": ("auto", "PaddleOCR-VL version of model_name_or_path: auto (read from the "
                              "folder, models/model_folder.py), 1, 1.5 or 1.6"),
    "allow_long_samples": (False, "train even when most samples exceed max_seq_len (they are "
                                  "dropped); never when none fits"),
}

# Keys users bring from ERNIEKit recipes (seed 002) that PaddleFormers spells differently.
ERNIEKIT_SPELLINGS = {
    "packing_size": "per_device_train_batch_size with padding_free: true (B samples per step)",
    "batch_size": "per_device_train_batch_size",
    "tensor_parallel_degree": "tensor_model_parallel_size",
    "pipeline_parallel_degree": "pipeline_model_parallel_size",
    "use_flash_attention": "_attn_implementation: flashmask",
    "multimodal": "stage: VL-SFT (PaddleFormers needs no multimodal switch)",
    "recompute": "recompute_granularity",
}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-4` (no dot) as a string; every recipe author means a number."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


def read_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


@dataclass
class Recipe:
    source: Path
    cfg: dict                                      # engine keys only
    ours: dict                                     # OCRSFT_KEYS, defaults filled in
    lines: dict = field(default_factory=dict)      # key -> "file:line" it was written at
    overridden: dict = field(default_factory=dict)  # key -> the override text

    @property
    def engine(self) -> str:
        return self.ours["engine"]

    def where(self, key: str) -> str:
        """Where a key was set: the override, the YAML line, or the file."""
        if key in self.overridden:
            return f"override {self.overridden[key]}"
        if key in self.lines:
            return f"{self.lines[key]}: {key}"
        return f"{self.source}: {key}"

    def fail(self, key: str, reason: str) -> UserError:
        return UserError(self.where(key), reason)


def shipped_recipe(path: Path) -> Path:
    """`path` itself, or, when it names `configs/...` and is not here, the recipe shipped
    with ocrsft (a wheel installs configs/ as package data), so the README's commands
    also work outside a checkout."""
    if path.is_file() or path.is_absolute() or not path.parts or path.parts[0] != "configs":
        return path
    import configs

    shipped = Path(next(iter(configs.__path__))).joinpath(*path.parts[1:])
    return shipped if shipped.is_file() else path


def load_yaml(path: str | Path, _seen: tuple = ()) -> tuple[dict, dict]:
    """(mapping, key -> "file:line"); a YAML error names the file and line.

    `base: other.yaml` (relative to this file) loads that recipe first and lays
    this one over it, so a variant holds only what differs.
    """
    path = shipped_recipe(Path(path))
    if not path.is_file():
        raise UserError(str(path), "config file not found")
    if path.resolve() in _seen:
        raise UserError(str(path), "base: recipes include each other in a loop")
    text = path.read_text(encoding="utf-8")
    try:
        cfg = read_yaml(text)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(where, f"invalid YAML ({getattr(e, 'problem', None) or e})") from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise UserError(str(path), "expected a mapping of keys to values")
    where = {k.value: f"{path}:{k.start_mark.line + 1}" for k, _ in node.value} if node else {}
    base = cfg.pop("base", None)
    if base is None:
        return cfg, where
    merged, merged_where = load_yaml(path.parent / str(base), _seen + (path.resolve(),))
    merged.update(cfg)
    merged_where.update(where)
    return merged, merged_where


def parse_overrides(items) -> dict:
    """["lr=5e-3", "packing=true"] -> {"lr": 0.005, "packing": True} (values read as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(item, "overrides are key=value")
        try:
            parsed = read_yaml(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = value
        out[key.strip()] = parsed
    return out


def split_keys(cfg: dict) -> tuple[dict, dict]:
    """Engine keys and ocrsft keys (with defaults), as two new dicts."""
    ours = {k: cfg.get(k, default) for k, (default, _) in OCRSFT_KEYS.items()}
    return {k: v for k, v in cfg.items() if k not in OCRSFT_KEYS}, ours


def resolve(path: str | Path, overrides=(), *, check: bool = True) -> Recipe:
    """Load a recipe, apply overrides, split, and (by default) validate it."""
    cfg, lines = load_yaml(path)
    extra = parse_overrides(overrides)
    cfg.update(extra)
    engine_cfg, ours = split_keys(cfg)
    recipe = Recipe(Path(path), engine_cfg, ours, lines,
                    {i.partition("=")[0].strip(): i for i in overrides})
    check_ours(recipe)
    if check and recipe.engine != "torch":  # the bridge validates its own schema
        coerce_and_check_keys(recipe)
        check_consistency(recipe)
    return recipe


def evaluates(cfg: dict) -> bool:
    """Whether the trainer will evaluate (it does whenever a strategy is set, as in HF)."""
    return bool(cfg.get("do_eval")) or str(cfg.get("evaluation_strategy", "no")) in ("steps", "epoch")


def check_ours(r: Recipe) -> None:
    o = r.ours
    if o["engine"] not in ENGINES:
        raise r.fail("engine", f"{o['engine']!r} is not one of {', '.join(ENGINES)}")
    if o["scale"] not in SCALES:
        raise r.fail("scale", f"{o['scale']!r} is not one of {', '.join(SCALES)}")
    for key in ("recipe_gpus", "gpus"):
        v = o[key]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise r.fail(key, f"must be a whole number >= 1, got {v!r}")
    for key, least in (("eval_generation_samples", 0), ("eval_generation_max_new_tokens", 1)):
        v = o[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise r.fail(key, f"must be a whole number >= {least}, got {v!r}")
    if o["eval_generation_samples"] and evaluates(r.cfg) and not r.cfg.get("eval_dataset_path"):
        raise r.fail("eval_generation_samples", "needs eval_dataset_path (the samples it decodes)")
    t = o["erniekit_timeout_s"]
    if not isinstance(t, (int, float)) or isinstance(t, bool) or t <= 0:
        raise r.fail("erniekit_timeout_s", f"must be a number of seconds > 0, got {t!r}")
    if not isinstance(o["allow_long_samples"], bool):
        raise r.fail("allow_long_samples", f"must be true or false, got {o['allow_long_samples']!r}")
    if not isinstance(o["ocr_augmentation"], bool):
        raise r.fail("ocr_augmentation", f"must be true or false, got {o['ocr_augmentation']!r}")


def paddleformers_fields() -> dict[str, type]:
    """Every key PaddleFormers' `train` accepts -> its declared type (Optional unwrapped)."""
    from paddleformers.cli.hparams import parser

    out = {}
    for cls in parser._TRAIN_ARGS:
        for f in dataclasses.fields(cls):
            tp = f.type
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if typing.get_origin(tp) is typing.Union and len(args) == 1:
                tp = args[0]
            out[f.name] = tp
    return out


def coerce(value, tp):
    """A YAML value as the type PaddleFormers declares; ValueError if it cannot be."""
    if value is None or not isinstance(tp, type):
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("must be true or false")
    if isinstance(value, bool) and issubclass(tp, enum.Enum):
        # YAML 1.1 reads `evaluation_strategy: no` as false (the "Norway problem")
        choices = [str(m.value) for m in tp]
        spelled = [w for w in (("yes", "true") if value else ("no", "false")) if w in choices]
        if spelled:
            return spelled[0]
        raise ValueError(f"must be one of {', '.join(choices)}")
    if isinstance(value, bool):
        raise ValueError(f"must be {tp.__name__}, not true/false")
    if tp is float:
        return float(value)  # YAML 1.1 reads "5e-6" as a string
    if tp is int:
        number = float(value)
        if number != int(number):
            raise ValueError("must be a whole number")
        return int(number)
    if tp is str and isinstance(value, (int, float)):
        return str(value)  # e.g. train_dataset_prob: 1.0
    return value


def coerce_and_check_keys(r: Recipe) -> None:
    known = paddleformers_fields()
    for key in list(r.cfg):
        if key not in known:
            hint = ERNIEKIT_SPELLINGS.get(key)
            if hint:
                reason = f"is ERNIEKit's key; PaddleFormers uses {hint}"
            else:
                close = difflib.get_close_matches(key, known, n=1)
                reason = "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
            raise r.fail(key, reason + "; PaddleFormers would stop on it "
                         "(\"not used by the PdArgumentParser\")")
        try:
            r.cfg[key] = coerce(r.cfg[key], known[key])
        except (TypeError, ValueError) as e:
            reason = str(e) if "must" in str(e) else f"must be {known[key].__name__}"
            raise r.fail(key, f"{r.cfg[key]!r}: {reason}") from None


def check_consistency(r: Recipe) -> None:
    """Contradictions PaddleFormers would accept silently or fail on an hour in."""
    c = r.cfg
    if "fine_tuning" not in c:
        raise r.fail("fine_tuning", "is not set; PaddleFormers would quietly default to LoRA "
                     "(write full or LoRA)")
    tuning = str(c["fine_tuning"]).lower()
    if tuning not in ("full", "lora"):
        raise r.fail("fine_tuning", f"{c['fine_tuning']!r} is neither full nor LoRA "
                     "(PaddleFormers would quietly run a full fine-tune)")
    if tuning == "full":
        for key in ("lora_rank", "lora_path", "rslora", "lora_plus_scale"):
            if key in c:
                raise r.fail(key, "is a LoRA setting but fine_tuning is full")
    if "lora_alpha" in c and c["lora_alpha"] != 2 * c.get("lora_rank", 8):
        raise r.fail("lora_alpha", "PaddleFormers ignores it (alpha is always 2 x lora_rank); "
                     "remove it or set lora_rank")
    if c.get("stage") == "OCR-VL-SFT" and r.engine == "paddleformers":
        raise r.fail("stage", "OCR-VL-SFT is ERNIEKit's stage; PaddleFormers calls it VL-SFT")
    freeze = str(c.get("freeze_config") or "").split()
    unknown = [t for t in freeze if t not in FREEZE]
    if unknown:
        raise r.fail("freeze_config", f"{unknown[0]!r} is not one of {', '.join(FREEZE)} "
                     "(space-separated)")
    if set(freeze) == set(FREEZE) and tuning == "full":
        raise r.fail("freeze_config", "freezes vision, aligner and LLM: nothing would train")
    if c.get("bf16") and c.get("fp16"):
        raise r.fail("fp16", "bf16 and fp16 are both true")
    lr, min_lr = c.get("learning_rate"), c.get("min_lr")
    if isinstance(lr, float) and isinstance(min_lr, float) and min_lr > lr:
        raise r.fail("min_lr", f"{min_lr} is above learning_rate {lr}")
    if str(c.get("_attn_implementation", "")).lower() == "flashmask" \
            and c.get("use_attn_mask_startend_row_indices") is False:
        raise r.fail("use_attn_mask_startend_row_indices", "must stay true with flashmask attention")
    for key in ("max_seq_len", "per_device_train_batch_size", "gradient_accumulation_steps",
                "save_steps", "eval_steps", "logging_steps"):
        if key in c and (not isinstance(c[key], int) or c[key] < 1):
            raise r.fail(key, f"must be a whole number >= 1, got {c[key]!r}")
    if evaluates(c) and not c.get("eval_dataset_path"):
        raise r.fail("eval_dataset_path" if "eval_dataset_path" in c else "do_eval",
                     "evaluation is on but eval_dataset_path is not set")
    for split in ("train", "eval"):
        paths, probs = c.get(f"{split}_dataset_path"), c.get(f"{split}_dataset_prob")
        if paths and probs and len(str(paths).split(",")) != len(str(probs).split(",")):
            raise r.fail(f"{split}_dataset_prob", f"gives {len(str(probs).split(','))} weights "
                         f"for {len(str(paths).split(','))} datasets")


# --- the recipe's paths --------------------------------------------------------------------

def dataset_paths(value) -> list[Path]:
    return [Path(p.strip()) for p in str(value or "").split(",") if p.strip()]


PATH_KEYS = ("model_name_or_path", "train_dataset_path", "eval_dataset_path", "output_dir",
             "logging_dir", "resume_from_checkpoint")


def absolute_paths(cfg: dict) -> dict:
    """PaddleFormers opens relative paths against the working directory; pin them now."""
    out = dict(cfg)
    for key in PATH_KEYS:
        value = out.get(key)
        # Outputs may not exist yet; a model name that is no local folder stays as written.
        local = key in ("output_dir", "logging_dir") or Path(str(value).split(",")[0]).exists()
        if isinstance(value, str) and value and local:
            out[key] = ",".join(str(Path(v).resolve()) for v in value.split(","))
    return out


def data_dir(cfg: dict) -> Path:
    """ERNIEKit image paths are relative to their JSONL; the trainer reads them from here."""
    paths = dataset_paths(cfg.get("train_dataset_path"))
    return paths[0].parent if paths else Path.cwd()
