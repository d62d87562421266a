"""Every workaround for paddlepaddle 3.3.1 + paddleformers 1.2.0 + paddleocr 3.7.0, in one place.

See ../shared/notes/engine-facts.md for how each was measured. Each patch
first checks that its target still has the shape it was written for and raises
`CompatError` otherwise, so an upgrade fails loudly instead of silently.

| # | problem                                                    | where handled            |
|---|------------------------------------------------------------|--------------------------|
| 1 | numpy<2 from the resolver breaks pyarrow                   | requirements.lock        |
| 2 | paddleocr_vl import dies on `triton` being undefined       | `_import_without_triton` |
| 3 | paddleformers-cli relaunches with an empty GPU list on CPU | `cpu_launch_settings` + in-process `run_tuner` |
| 4 | AMP flags conflict in fp32                                 | `cpu_launch_settings`    |
| 5 | `fused_rms_norm_ext` is not registered on CPU              | `fix_model_config`       |
| 6 | LoRA collate unwraps to the inner LM (no get_rope_index)   | `_patch_lora_collate`    |
| 7 | LoRA evaluation dies on `GPTModel` being undefined         | `_define_gpt_model_for_eval` |
| + | the paddleocr_vl template's hard-coded image augmentation  | `set_template_augmentation` |
| + | flex_checkpoint resume needs a fleet group CPU never builds | `cpu_launch_settings`    |
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import types
from pathlib import Path


class CompatError(RuntimeError):
    """A patched third-party function no longer looks as expected."""


EXPECTED = {"paddlepaddle": "3.3.1", "paddleformers": "1.2.0", "paddleocr": "3.7.0"}

_applied = False
_augment = True


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise CompatError(f"ocrsft's workaround no longer fits: {what}. "
                          f"It was written for {EXPECTED}; check engines/paddleformers/compat.py.")


class _Passthrough(types.ModuleType):
    """Stands in for `triton`/`triton.language` while paddleformers defines kernels.

    Decorators return the function unchanged and attributes are inert, so the
    module body runs; no kernel is ever called because `is_available` is False.
    """

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _inert

    def jit(self, fn=None, **_):
        return fn if fn is not None else (lambda f: f)


def _inert(*args, **kwargs):
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return _inert


def _import_without_triton() -> None:
    if "paddleformers.triton_kernels" in sys.modules or importlib.util.find_spec("triton"):
        return
    stub, lang = _Passthrough("triton"), _Passthrough("triton.language")
    stub.language = lang
    sys.modules.update({"triton": stub, "triton.language": lang})
    try:
        import paddleformers.triton_kernels.rope_triton as rope
    finally:
        # Leave no fake triton behind: torch and others probe for the real one.
        del sys.modules["triton"], sys.modules["triton.language"]
    _expect(hasattr(rope, "_check_triton_available"),
            "paddleformers.triton_kernels.rope_triton._check_triton_available is gone")
    _expect(rope.apply_rotary_pos_emb_vision.is_available() is False,
            "the triton rope kernel claims to be available without triton")


def _patch_lora_collate() -> None:
    import paddleformers.cli.train.sft.workflow as workflow
    import paddleformers.datasets.collate as collate
    from paddleformers.peft.lora import LoRAModel

    original = collate.mm_collate_fn
    if getattr(original, "_ocrsft_patched", False):
        return
    params = list(inspect.signature(original).parameters)
    _expect(params[-1] == "model" and "padding_free" in params,
            f"mm_collate_fn's parameters changed: {params}")
    _expect("model.model.base_model" in inspect.getsource(original),
            "mm_collate_fn no longer unwraps LoRA to model.model.base_model (fixed upstream?)")
    _expect(workflow.mm_collate_fn is original, "workflow no longer imports mm_collate_fn")

    def mm_collate_fn(*args, **kwargs):
        model = kwargs.get("model")
        if isinstance(model, LoRAModel):
            # Keep the outer VL model: it owns get_rope_index (3-D mRoPE ids).
            kwargs["model"] = model.model
        return original(*args, **kwargs)

    mm_collate_fn._ocrsft_patched = True
    collate.mm_collate_fn = workflow.mm_collate_fn = mm_collate_fn


def _patch_cpu_synchronize() -> None:
    """The trainer calls paddle.device.synchronize() after each accumulation window
    (gradient_accumulation_steps > 1), which raises `TypeError: device should be gpu,
    xpu` on a CPU place. CPU kernels finish before they return: nothing to wait for."""
    import paddle

    original = paddle.device.synchronize
    if getattr(original, "_ocrsft_patched", False):
        return
    _expect("device should be gpu" in inspect.getsource(original),
            "paddle.device.synchronize no longer refuses a CPU place (fixed upstream?)")

    def synchronize(device=None):
        if device is None:
            place = paddle.framework._current_expected_place_()
        else:
            place = paddle.device._convert_to_place(device) if isinstance(device, str) else device
        if isinstance(place, paddle.CPUPlace):
            return None
        return original(device)

    synchronize._ocrsft_patched = True
    paddle.device.synchronize = synchronize


def _define_gpt_model_for_eval() -> None:
    """Trainer.evaluation_loop tests `isinstance(self.model.model, GPTModel)` for LoRA
    models, but imports GPTModel only when paddlefleet is installed; without it every
    LoRA evaluation raises NameError. No model here is a paddlefleet GPTModel, so a
    class nothing is an instance of gives the branch the answer it would have had."""
    import paddleformers.trainer.trainer as trainer

    if hasattr(trainer, "GPTModel"):
        return  # paddlefleet is installed, or already done
    _expect("isinstance(self.model.model, GPTModel)" in inspect.getsource(trainer.Trainer.evaluation_loop),
            "Trainer.evaluation_loop no longer checks GPTModel (fixed upstream?)")
    trainer.GPTModel = type("GPTModel", (), {"__doc__": "ocrsft compat 7: no instances"})


def _patch_template_augmentation() -> None:
    from paddleformers.datasets.template.mm_plugin import PaddleOCRVLPlugin

    init = PaddleOCRVLPlugin.__init__
    if getattr(init, "_ocrsft_patched", False):
        return
    _expect("image_augmentation" in inspect.getsource(init),
            "PaddleOCRVLPlugin.__init__ no longer sets image_augmentation")

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if not _augment:
            del self.image_augmentation  # _preprocess_image checks hasattr

    __init__._ocrsft_patched = True
    PaddleOCRVLPlugin.__init__ = __init__


def set_template_augmentation(enabled: bool) -> None:
    """PaddleFormers has no key for this; 28-px text lines do not survive it.

    The registered `paddleocr_vl` template built its plugin when PaddleFormers'
    template module was imported, before any patch could run, so the switch is
    applied to the live instances too (stashing the transform to restore it).
    """
    global _augment
    _augment = bool(enabled)
    from paddleformers.datasets.template.mm_plugin import PaddleOCRVLPlugin
    from paddleformers.datasets.template.template import TEMPLATES

    for template in TEMPLATES.values():
        plugin = getattr(template, "mm_plugin", None)
        if not isinstance(plugin, PaddleOCRVLPlugin):
            continue
        if not _augment and hasattr(plugin, "image_augmentation"):
            plugin._ocrsft_augmentation = plugin.image_augmentation
            del plugin.image_augmentation  # _preprocess_image checks hasattr
        elif _augment and hasattr(plugin, "_ocrsft_augmentation"):
            plugin.image_augmentation = plugin._ocrsft_augmentation


def apply() -> None:
    """Apply every in-process workaround; call before importing paddleformers models."""
    global _applied
    if _applied:
        return
    _import_without_triton()
    _patch_lora_collate()
    _define_gpt_model_for_eval()
    _patch_template_augmentation()
    _patch_cpu_synchronize()
    _applied = True


def cpu_launch_settings() -> dict:
    """Training keys without which paddleformers fails or hangs on a CPU-only box."""
    return {
        "device": "cpu",
        "amp_master_grad": False,       # 4: conflicts with disabled AMP
        "compute_type": "float32",
        "bf16": False,
        "fp16": False,
        "fp16_opt_level": "O1",         # O2 demands bf16/fp16 ("Please specific dtype")
        "_attn_implementation": "eager",
        "use_attn_mask_startend_row_indices": False,
        "sharding": "",
        "dataloader_num_workers": 0,
        "tensor_model_parallel_size": 1,
        "pipeline_model_parallel_size": 1,
        # flex_checkpoint resume asks fleet for a communicate group that a single
        # CPU process never builds ('Fleet' object has no attribute '_hcg');
        # the plain per-rank format saves and resumes without it.
        "save_checkpoint_format": None,
        "load_checkpoint_format": None,
    }


def fix_model_config(model_dir: Path) -> bool:
    """5: disable the fused RMSNorm kernel that CPU paddle lacks. Returns True if changed."""
    cfg_path = Path(model_dir) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("fuse_rms_norm") is False:
        return False
    cfg["fuse_rms_norm"] = False
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    return True


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def check_install() -> None:
    """Run by `make setup`: versions, headless OpenCV, and every patch target."""
    from importlib.metadata import PackageNotFoundError, distribution

    for pkg, want in EXPECTED.items():
        if pkg == "paddlepaddle" and _dist_version("paddlepaddle") is None:
            # GPU images ship paddlepaddle-gpu (3.x); the patches target paddleformers.
            got = _dist_version("paddlepaddle-gpu") or "missing"
            _expect(got.startswith("3."), f"paddlepaddle-gpu is {got}, expected 3.x")
            continue
        _expect(_dist_version(pkg) == want, f"{pkg} is {_dist_version(pkg)}, expected {want}")
    for gui in ("opencv-python", "opencv-contrib-python"):
        try:
            dist = distribution(gui)
        except PackageNotFoundError:
            continue
        # The installer's shim of the same name carries metadata only (see install.py).
        if any(not str(f).split("/")[0].endswith(".dist-info") for f in dist.files or []):
            raise CompatError(f"{gui} (a GUI OpenCV build needing libGL) is installed")
    _expect(_dist_version("opencv-python-headless") is not None, "opencv-python-headless is missing")
    import cv2  # noqa: F401  (must import without libGL)
    import pyarrow  # noqa: F401  (1: breaks with numpy<2)

    apply()
    import paddleformers.transformers.paddleocr_vl  # noqa: F401
