"""Fold a LoRA run's adapter into a full PaddleOCR-VL model folder.

A LoRA run's output_dir holds only the adapter (`lora_config.json` with
`lora_model_state.pdparams`, or `peft_model-*.safetensors` from GPU runs). The
merged folder has the base model's layout (config, preprocessor, tokenizer,
HF-layout `model-*.safetensors`), which `ocrsft export` then makes servable.

The merge itself is PaddleFormers' mergekit (`MergeModel`, what
`paddleformers-cli export` runs), with one fix: mergekit transposes the HF
linear weights back with a numpy view, and safetensors 0.8 writes a view's
buffer in memory order, so every merged matrix came out scrambled (logits off
by up to 8 on the tiny model). Saving contiguous arrays fixes it; `logit_gap`
is the check, used by `--verify` and the tests.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from models import model_folder
from samples.errors import UserError
from samples.image_tokens import IMAGE_BLOCK

COPY_FROM_BASE = ("config.json", "preprocessor_config.json", "tokenizer.model",
                  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                  "chat_template.jinja", "generation_config.json", "inference.yml")
PROBE = f"<|begin_of_sentence|>User: {IMAGE_BLOCK}OCR:\nAssistant: "


def is_lora_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / "lora_config.json").is_file()


def base_of(run_dir: Path) -> Path:
    """The base model a LoRA run adapted, as its lora_config.json records it."""
    base = json.loads((run_dir / "lora_config.json").read_text()).get("base_model_name_or_path")
    if not base or not Path(base).is_dir():
        raise UserError("--base", f"{run_dir}/lora_config.json names base {base!r}, which is not "
                                  "a folder here; pass --base BASE_MODEL_DIR")
    return Path(base)


@contextlib.contextmanager
def contiguous_saves():
    """Make mergekit hand safetensors contiguous arrays (see the module docstring)."""
    import numpy as np
    import paddleformers.mergekit.merge_model as mergekit

    save = mergekit.save_file
    if getattr(save, "__module__", "") != "safetensors.numpy":
        raise RuntimeError("paddleformers' mergekit no longer saves with safetensors.numpy."
                           "save_file; check engines/paddleformers/merge.py against this version")
    mergekit.save_file = lambda tensors, *a, **k: save(
        {name: np.ascontiguousarray(t) for name, t in tensors.items()}, *a, **k)
    try:
        yield
    finally:
        mergekit.save_file = save


def merge_lora(run_dir: str | Path, out: str | Path, base: str | Path | None = None) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    if not is_lora_run(run_dir):
        raise UserError(str(run_dir), "holds no lora_config.json: not a LoRA run (full runs "
                                      "need no merge)")
    base = model_folder.check_model_folder(base or base_of(run_dir))
    if out.exists() and any(out.iterdir()):
        raise UserError(str(out), "exists and is not empty")
    from engines.paddleformers import compat

    compat.apply()
    from paddleformers.mergekit import MergeConfig, MergeModel

    config = MergeConfig(base_model_path=str(base), lora_model_path=str(run_dir),
                         output_path=str(out), convert_from_hf=True, save_to_hf=True)
    with contiguous_saves():
        MergeModel(config).merge_model()
    for name in COPY_FROM_BASE:
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    return model_folder.check_model_folder(out)


def logit_gap(base: Path, run_dir: Path, merged: Path, image: Path) -> float:
    """max |logits(base + adapter) - logits(merged)| on one image and the OCR prompt."""
    from engines.paddleformers import compat

    compat.apply()
    import numpy as np
    import paddle
    from paddleformers.peft import LoRAModel
    from paddleformers.transformers import AutoProcessor
    from paddleformers.transformers import PaddleOCRVLForConditionalGeneration as Model
    from PIL import Image

    with Image.open(image) as img:
        inputs = AutoProcessor.from_pretrained(str(base))(
            text=[PROBE], images=[img.convert("RGB")], return_tensors="pd")

    def logits(model) -> np.ndarray:
        model.eval()
        with paddle.no_grad():
            return model(**inputs, return_dict=True).logits.numpy()

    adapted = LoRAModel.from_pretrained(
        model=Model.from_pretrained(str(base), convert_from_hf=True, dtype="float32"),
        lora_path=str(run_dir))
    merged_model = Model.from_pretrained(str(merged), convert_from_hf=True, dtype="float32")
    return float(np.abs(logits(adapted) - logits(merged_model)).max())


def add_args(p) -> None:
    p.add_argument("run", type=Path, help="a LoRA training run's output folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="the full model folder to write")
    p.add_argument("--base", type=Path, help="the base model (default: from lora_config.json)")
    p.add_argument("--verify", type=Path, metavar="IMAGE",
                   help="compare adapter and merged logits on this image (must agree to 1e-4)")


def main(args) -> int:
    out = merge_lora(args.run, args.out, args.base)
    print(f"merge: wrote {out}")
    if args.verify:
        gap = logit_gap(Path(args.base or base_of(args.run)), args.run, out, args.verify)
        if gap > 1e-4:
            raise UserError(str(out), f"merged logits differ from the adapter's by {gap:.2e}")
        print(f"merge: logits match the adapter's (max difference {gap:.1e})")
    return 0
