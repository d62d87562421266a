"""`ocrsft export RUN -o DIR [--base BASE]`: a folder paddleocr / paddlex loads (the base's version).

A paddleformers output folder is not servable as it stands (inference-facts.md):
1. no `inference.yml`, and the chat template must be the base model's;
2. weights come sharded, and paddlex accepts exactly one `model.safetensors`;
3. tensors training never touched (the vision head) are missing;
4. `generation_config.json` has no EOS and `max_length: 20`;
5. the tokenizer config must not add a second BOS.
Each step below fixes one of these, then paddlex itself loads the result.

A LoRA run is first merged into its base (engines/paddleformers/merge.py), and a
PyTorch-bridge run (engine: torch) is merged and saved by the bridge
(engines/bridge/merge.py), so `ocrsft export RUN` is one command for all. The
folder also loads in transformers (`PaddleOCRVLForConditionalGeneration` and
its processor), which needs the image token named in the tokenizer config.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from samples.errors import UserError
from samples.image_tokens import IMAGE_TOKEN
from models import model_folder
from engines import ERNIEKIT_RESOLVED, engine_of_run

COPY = ("config.json", "preprocessor_config.json", "tokenizer.model", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json")
FROM_BASE = ("chat_template.jinja", "generation_config.json", "tokenizer_config.json",
             "special_tokens_map.json", "preprocessor_config.json")


def resolved_key(run_dir: Path, key: str):
    import yaml

    for path in (run_dir / "resolved.yaml", run_dir / ERNIEKIT_RESOLVED):  # the engines write these
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


def erniekit_from_base(run_dir: Path) -> tuple[str, ...]:
    """What an ERNIEKit (engine: erniekit) run must take from its base instead:
    its config.json is ERNIE's schema, with the vision hidden_act rewritten to
    gelu_new (ernie/siglip/configuration.py:76, which paddleformers 1.2 rejects)
    and the special-token ids dropped; its added_tokens.json adds a <mask:0>
    beyond the embedding. SFT changes neither the architecture nor the vocabulary."""
    return ("config.json",) if engine_of_run(run_dir) == "erniekit" else ()


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


def export(run_dir: str | Path, out: str | Path, base: str | Path | None = None,
           verify: bool = True, recorded: dict | None = None, device: str = "auto") -> Path:
    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise UserError(str(run_dir), "run folder not found")
    if engine_of_run(run_dir) == "torch":
        from engines.bridge.merge import export as bridge_export

        return bridge_export(run_dir, out)
    from engines.paddleformers.merge import base_of, is_lora_run, merge_lora

    if is_lora_run(run_dir):
        import tempfile

        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".merging-") as tmp:
            merged = merge_lora(run_dir, Path(tmp) / "merged", base)
            print(f"export: merged the LoRA adapter of {run_dir} into its base")
            return export(merged, out, base or base_of(run_dir), verify,
                          recorded or trained_as(run_dir))
    base = Path(base) if base else find_base(run_dir)
    if base is None:
        raise UserError("--base", f"cannot tell which base model {run_dir} was trained from; "
                                  "pass --base BASE_MODEL_DIR")
    model_folder.check_model_folder(base)
    if not model_folder.weight_files(run_dir):
        raise UserError(str(run_dir), "holds no *.safetensors weights (did training finish?)")
    out.mkdir(parents=True, exist_ok=True)
    ernie = erniekit_from_base(run_dir)
    for name in COPY:
        if (run_dir / name).is_file() and not (ernie and name == "added_tokens.json"):
            shutil.copy2(run_dir / name, out / name)
    for w in model_folder.weight_files(run_dir):
        shutil.copy2(w, out / w.name)
    if (run_dir / "model.safetensors.index.json").is_file():
        shutil.copy2(run_dir / "model.safetensors.index.json", out)
    model_folder.consolidate_safetensors(out)
    for name in FROM_BASE + ernie:
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    added = fill_missing_tensors(out, base)
    config = model_folder.read_config(base)
    fix_generation_config(out, config)
    fix_tokenizer_config(out)
    # The version is the base's: its chat template came along, inference.yml names it.
    recorded = recorded or trained_as(run_dir)
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
        from inference.predict import load_native

        load_native(out, device)
    return out


def add_args(p) -> None:
    p.add_argument("run", type=Path, help="a training run's output folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write")
    p.add_argument("--base", type=Path, help="the base model folder (default: from the run's config)")
    p.add_argument("--no-verify", action="store_true", help="skip loading the result with paddlex")
    p.add_argument("--model-version", choices=sorted(model_folder.VERSIONS),
                   help="the PaddleOCR-VL version to serve as (default: the recipe's model_version, "
                        "else read from the base folder)")
    p.add_argument("--device", default="auto", help="where the check loads it: auto, cpu or gpu:N")


def main(args) -> int:
    from engines.bridge.generate import is_bridge_model

    recorded = None
    if args.model_version and args.run.is_dir():
        recorded = {**trained_as(args.run), "model_version": args.model_version}
    out = export(args.run, args.out, args.base, verify=not args.no_verify, recorded=recorded,
                 device=args.device)
    if is_bridge_model(out):
        print(f"export: wrote {out} (loads in transformers; `ocrsft infer {out}` generates)")
    else:
        version, _ = model_folder.detect_version(out)
        print(f"export: wrote {out} (loads in paddlex as {version.paddlex_model_name}; "
              f"paddleocr doc_parser --pipeline_version {version.pipeline_version})")
    return 0
