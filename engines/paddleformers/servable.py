"""A PaddleFormers or ERNIEKit run -> a folder paddleocr / paddlex loads (the base's version).

A paddleformers output folder is not servable as it stands (inference-facts.md):
1. no `inference.yml`, and the chat template must be the base model's;
2. weights come sharded, and paddlex accepts exactly one `model.safetensors`;
3. tensors training never touched (the vision head) are missing;
4. `generation_config.json` has no EOS and `max_length: 20`;
5. the tokenizer config must not add a second BOS.
Each step below fixes one of these, then paddlex itself loads the result.

A LoRA run is first merged into its base (engines/paddleformers/merge.py). The
folder also loads in transformers (`PaddleOCRVLForConditionalGeneration` and
its processor), which needs the image token named in the tokenizer config.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from erniekit_ext.launch import ERNIEKIT_RESOLVED
from models import model_folder
from samples.errors import UserError
from samples.image_tokens import IMAGE_TOKEN
from training.run_folder import RESOLVED

COPY = ("config.json", "preprocessor_config.json", "tokenizer.model", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json")
FROM_BASE = ("chat_template.jinja", "generation_config.json", "tokenizer_config.json",
             "special_tokens_map.json", "preprocessor_config.json")


def resolved_key(run_dir: Path, key: str):
    import yaml

    for path in (run_dir / RESOLVED, run_dir / ERNIEKIT_RESOLVED):  # the engines write these
        value = yaml.safe_load(path.read_text()).get(key) if path.is_file() else None
        if value is not None:
            return value
    return None


def trained_as(run_dir: Path) -> dict:
    """What the run says about its prompt: the template (resolved.yaml) and the recipe's
    model_version (plan.json), so export serves the version the run was trained for."""
    plan = run_dir / "plan.json"
    ours = json.loads(plan.read_text()).get("ocrsft", {}) if plan.is_file() else {}
    return {"template": resolved_key(run_dir, "template"), "model_version": ours.get("model_version")}


def find_base(run_dir: Path) -> Path | None:
    """The model the run started from, as recorded in its resolved config."""
    base = resolved_key(run_dir, "model_name_or_path")
    return Path(base) if base and Path(base).is_dir() else None


def fill_missing_tensors(out: Path, base: Path) -> list[str]:
    """Copy tensors the base has and the export lacks (e.g. visual.vision_model.head.*)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    target = out / "model.safetensors"
    base_files = model_folder.weight_files(base)
    have = load_file(target)
    added = []
    for f in base_files:
        with safe_open(f, "np") as src:
            for key in src.keys():
                if key not in have:
                    have[key] = src.get_tensor(key)
                    added.append(key)
    if added:
        tmp = out / ".model.safetensors.part"
        save_file(have, tmp, metadata={"format": "pt"})
        tmp.replace(target)
    return added


def fix_generation_config(out: Path, config: dict) -> None:
    path = out / "generation_config.json"
    gen = json.loads(path.read_text()) if path.is_file() else {}
    gen.setdefault("eos_token_id", config.get("eos_token_id", 2))
    gen.pop("max_length", None)  # paddleformers writes 20, which cuts every answer short
    gen["do_sample"] = False
    path.write_text(json.dumps(gen, indent=2) + "\n")


def fix_tokenizer_config(out: Path) -> None:
    """transformers' PaddleOCRVLProcessor reads `tokenizer.image_token`, which only
    `extra_special_tokens` defines; paddlex and paddleformers ignore the key."""
    path = out / "tokenizer_config.json"
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}", f"invalid JSON ({e.msg})") from None
    extra = cfg.get("extra_special_tokens") or {}
    if isinstance(extra, dict) and "image_token" not in extra:
        cfg["extra_special_tokens"] = {**extra, "image_token": IMAGE_TOKEN}
    # The chat template writes <|begin_of_sentence|> and PaddleFormers trains without <s>;
    # paddlex's tokenizer would prepend one more (trap 5; `ocrsft parity` checks it).
    cfg["add_bos_token"] = False
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def export(run_dir: Path, out: Path, base: Path | None = None, *, verify: bool = True,
           model_version: str | None = None, device: str = "auto",
           from_base: tuple[str, ...] = (), not_served: tuple[str, ...] = (),
           recorded: dict | None = None) -> Path:
    """`from_base`: files served from the base instead of the run; `not_served`: run files
    left out (both for the erniekit engine's, engines/erniekit.py); `model_version`
    overrides the recipe's."""
    run_dir, out = Path(run_dir), Path(out)
    if recorded is None:
        recorded = trained_as(run_dir)
        if model_version:
            recorded["model_version"] = model_version
    from engines.paddleformers.merge import base_of, is_lora_run, merge_lora

    if is_lora_run(run_dir):
        import tempfile

        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".merging-") as tmp:
            merged = merge_lora(run_dir, Path(tmp) / "merged", base)
            print(f"export: merged the LoRA adapter of {run_dir} into its base")
            return export(merged, out, base or base_of(run_dir), verify=verify, device=device,
                          recorded=recorded)
    base = Path(base) if base else find_base(run_dir)
    if base is None:
        raise UserError("--base", f"cannot tell which base model {run_dir} was trained from; "
                                  "pass --base BASE_MODEL_DIR")
    model_folder.check_model_folder(base)
    if not model_folder.weight_files(run_dir):
        raise UserError(str(run_dir), "holds no *.safetensors weights (did training finish?)")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        if name not in from_base + not_served and (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out / name)
    for w in model_folder.weight_files(run_dir):
        shutil.copy2(w, out / w.name)
    if (run_dir / "model.safetensors.index.json").is_file():
        shutil.copy2(run_dir / "model.safetensors.index.json", out)
    model_folder.consolidate_safetensors(out)
    for name in FROM_BASE + tuple(from_base):
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    added = fill_missing_tensors(out, base)
    config = model_folder.read_config(base)
    fix_generation_config(out, config)
    fix_tokenizer_config(out)
    # The version is the base's: its chat template came along, inference.yml names it.
    version, _ = model_folder.detect_version(base, recorded["model_version"])
    model_folder.write_inference_yml(out, version.name)
    template = recorded["template"]
    model_folder.write_training_record(out, template, version)
    if template and template != version.train_template:
        print(f"export: WARNING {run_dir} was trained with template {template}, but {base} is "
              f"PaddleOCR-VL {version.name}, served with {version.train_template}'s prompt; "
              f"`ocrsft parity {out} --data VAL.jsonl` shows where they part")
    model_folder.check_model_folder(out, for_serving=True)
    if added:
        print(f"export: took {len(added)} tensors the run lacked from {base}")
    if verify:
        from engines.paddleformers.predict import load_native

        load_native(out, device)
    return out
