"""Recipes: a YAML file plus `key=value` overrides -> the engine's keys and ocrsft's own.

The one home of the recipe schema: this module holds what every engine shares
(loading, `base:`, overrides, OCRSFT_KEYS, the path helpers); each engine's keys
are checked by its own section, chosen in SECTIONS: `paddleformers.py` (engines
paddleformers and erniekit) and `bridge.py` (engine torch).

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

import re
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
    if check:
        SECTIONS[recipe.engine](recipe)
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


# Each engine's own section; imported last because the sections use Recipe, FREEZE, evaluates.
from training.recipe import bridge, paddleformers  # noqa: E402

SECTIONS = {"paddleformers": paddleformers.check, "erniekit": paddleformers.check,
            "torch": bridge.check}
