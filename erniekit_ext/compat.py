"""Every workaround for ERNIEKit (ERNIE aef7dbe) + paddleformers 0.4.0 + paddlepaddle 3.2.2, in one place.

Runs inside ERNIEKit's own venv (`make setup-erniekit`), never in the project's:
it imports only the standard library, paddle and ERNIE. It is also the entry
point the erniekit engine starts there:

    python -m erniekit_ext.compat train CFG.yaml [key=value ...]

which applies the patches and then runs ERNIEKit's in-process launcher
(`erniekit.launcher`, what `erniekit train` starts in each worker). See
../shared/notes/erniekit-facts.md for how each was measured. As in compat.py,
each patch first checks that its target still has the shape it was written for
and raises `CompatError` otherwise, so a new ERNIE commit fails loudly.

| # | problem (file:line in ERNIE aef7dbe)                                  | where handled          |
|---|-----------------------------------------------------------------------|------------------------|
| 1 | `erniekit train` imports gradio/openai and relaunches with no GPU list (erniekit/cli.py:73,188) | `main`: in-process launcher |
| 2 | `detect_device()` says gpu on CPU (utils/process.py:91)               | `_cpu_detect_device`   |
| 3 | bf16 forced on, fp32 compute_type rejected (finetuning_args.py:494,517) | `_cpu_no_bf16`       |
| 4 | `fuse_rms_norm=True` hard-coded; no CPU kernel (configuration_paddleocr_vl.py:126) | `_cpu_no_fused_rms_norm` |
| 5 | eager attention mask one column too wide (modeling_paddleocr_vl_ernie.py:1915) | `_fix_eager_mask_width` |
| 6 | paddle CPU `F.nll_loss` with -100 labels corrupts the heap (modeling_paddleocr_vl.py:63) | `_cpu_masked_nll` |
| 7 | trainer logging asks CPUPlace for a device id; info_callback GPU-only (pretraining_trainer.py:1298,1317) | `_cpu_trainer_logging` |

On a GPU only 1 (the launcher) and 5 (a plain bug) apply; the multi-GPU launch
goes through paddle.distributed.launch, each worker entering this module.
"""
from __future__ import annotations

import inspect
import json
import os
import sys
import textwrap

EXPECTED = {"paddlepaddle": "3.2.2", "paddleformers": "0.4.0", "erniekit": "0.0.0"}
ERNIE_COMMIT = "aef7dbe741f739a4c952c39064e4ffd562c1d9b9"

_applied = False


class CompatError(RuntimeError):
    """A patched ERNIEKit function no longer looks as expected."""


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise CompatError(f"ocrsft's ERNIEKit workaround no longer fits: {what}. It was written for "
                          f"ERNIE {ERNIE_COMMIT[:7]} with {EXPECTED}; check erniekit_ext/compat.py.")


def has_gpu() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def rewrite(owner, name: str, edits: list[tuple[str, str]]) -> None:
    """Recompile `owner.name` from its own source with exact one-place edits; each
    `old` must occur exactly once, which is the shape check."""
    fn = owner.__dict__[name]
    if getattr(fn, "_ocrsft_patched", False):
        return
    src = textwrap.dedent(inspect.getsource(fn))
    _expect("super()" not in src, f"{owner.__name__}.{name} now calls super()")
    for old, new in edits:
        _expect(src.count(old) == 1, f"{owner.__module__}.{owner.__name__}.{name} no longer "
                                     f"contains {old.strip()!r} exactly once")
        src = src.replace(old, new)
    ns: dict = {}
    exec(compile(src, f"<erniekit_ext.compat {owner.__name__}.{name}>", "exec"), fn.__globals__, ns)
    ns[name]._ocrsft_patched = True
    setattr(owner, name, ns[name])


def _cpu_detect_device() -> None:
    """2: must run before any ERNIE module binds `detect_device` by name."""
    import erniekit.utils.process as process

    if getattr(process.detect_device, "_ocrsft_patched", False):
        return
    src = inspect.getsource(process.detect_device)
    _expect('return "gpu"' in src and "paddle.get_device()" in src,
            "detect_device no longer falls back to gpu")
    _expect("erniekit.hparams.finetuning_args" not in sys.modules,
            "finetuning_args was imported before the detect_device patch")

    def detect_device():
        return "cpu"

    detect_device._ocrsft_patched = True
    process.detect_device = detect_device


def masked_nll(log_probs, labels, ignore_index: int = -100):
    """F.nll_loss(log_probs, labels) (mean over labels != ignore_index) without the
    kernel that corrupts the heap on CPU: pick each label's log-probability with
    take_along_axis, the ignored ones zeroed by a mask."""
    import paddle

    labels = labels.reshape([-1])
    keep = labels != ignore_index
    safe = paddle.where(keep, labels, paddle.zeros_like(labels))
    picked = paddle.take_along_axis(log_probs, safe.unsqueeze(-1), axis=1).squeeze(-1)
    weight = keep.astype(log_probs.dtype)
    return -(picked * weight).sum() / weight.sum()


def _cpu_masked_nll() -> None:
    """6: the loss ERNIE computes by hand, with `masked_nll` in place of F.nll_loss."""
    import ernie.modeling_paddleocr_vl as modeling

    original = modeling.paddle_cross_entropy_by_hand
    if getattr(original, "_ocrsft_patched", False):
        return
    src = inspect.getsource(original)
    _expect("F.nll_loss(log_softmax, shift_labels)" in src and "paddle.log(softmax + 1e-10)" in src,
            "paddle_cross_entropy_by_hand no longer ends in F.nll_loss(log_softmax, shift_labels)")
    _expect("loss_fct = paddle_cross_entropy_by_hand" in inspect.getsource(modeling),
            "the model no longer looks paddle_cross_entropy_by_hand up by name")

    def paddle_cross_entropy_by_hand(shift_logits, shift_labels):
        import paddle

        softmax = paddle.exp(shift_logits) / paddle.sum(paddle.exp(shift_logits), axis=1, keepdim=True)
        return masked_nll(paddle.log(softmax + 1e-10), shift_labels)

    paddle_cross_entropy_by_hand._ocrsft_patched = True
    modeling.paddle_cross_entropy_by_hand = paddle_cross_entropy_by_hand


def _cpu_no_bf16() -> None:
    """3: FinetuningArguments.__post_init__ sets bf16=True whatever compute_type says
    and only accepts low-precision compute types; the recipe says bf16 and this
    turns it off right before the parent's checks run (paddle CPU has no bf16 AMP)."""
    from erniekit.hparams.finetuning_args import FinetuningArguments

    src = inspect.getsource(FinetuningArguments.__post_init__)
    _expect("self.bf16 = True" in src and "super().__post_init__()" in src,
            "FinetuningArguments.__post_init__ no longer forces bf16 before super().__post_init__()")
    parent = next(c for c in FinetuningArguments.__mro__[1:] if "__post_init__" in c.__dict__)
    original = parent.__dict__["__post_init__"]
    if getattr(original, "_ocrsft_patched", False):
        return
    _expect(parent.__module__.startswith("paddleformers."),
            f"the next __post_init__ is {parent.__module__}.{parent.__name__}, not paddleformers'")

    def __post_init__(self):
        if isinstance(self, FinetuningArguments):
            self.bf16 = self.fp16 = False
            self.amp_master_grad = False
        original(self)

    __post_init__._ocrsft_patched = True
    parent.__post_init__ = __post_init__


def _cpu_no_fused_rms_norm() -> None:
    """4: the config turns the fused RMSNorm on after reading config.json."""
    from ernie.configuration_paddleocr_vl import PaddleOCRVLConfig

    init = PaddleOCRVLConfig.__init__
    if getattr(init, "_ocrsft_patched", False):
        return
    _expect("self.fuse_rms_norm = True" in inspect.getsource(init),
            "PaddleOCRVLConfig.__init__ no longer hard-codes fuse_rms_norm = True")

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.fuse_rms_norm = False

    __init__._ocrsft_patched = True
    PaddleOCRVLConfig.__init__ = __init__


def _fix_eager_mask_width() -> None:
    """5: without a mask tensor the eager path builds a (L, L+1) causal mask that does
    not broadcast against (L, L) attention scores."""
    from ernie.modeling_paddleocr_vl_ernie import Ernie4_5Model

    rewrite(Ernie4_5Model, "_update_causal_mask",
            [("else past_seen_tokens + sequence_length + 1", "else past_seen_tokens + sequence_length")])


def _cpu_trainer_logging() -> None:
    """7: CPUPlace has no device id (device 0 reads as zero memory), and the sync form of the training
    logs stands in for the async one the trainer defines on GPU only."""
    from erniekit.train.ocr_vl_sft.pretraining_trainer import PretrainingTrainer

    rewrite(PretrainingTrainer, "_maybe_log_save_evaluate", [
        ("device_id = current_device.get_device_id()",
         "device_id = current_device.get_device_id() if get_env_device() == 'gpu' else 0"),
        ("info, gathered_info = info_callback()",
         "info, gathered_info = (info_callback() if get_env_device() == 'gpu' "
         "else global_training_logs.dict())"),
    ])


DUMP_ENV = "OCRSFT_ERNIEKIT_FIRST_BATCH"


def dump_first_batch(path: str) -> None:
    """Write the first training batch ERNIEKit builds (ids, labels, pixel dtype and
    range) as JSON to `path`: what the stage really trains on, for `ocrsft parity`
    and the tests. Opt-in (OCRSFT_ERNIEKIT_FIRST_BATCH); training goes on unchanged."""
    from paddleformers.trainer import Trainer

    original = Trainer.training_step
    _expect("inputs" in inspect.signature(original).parameters,
            "paddleformers' Trainer.training_step no longer takes `inputs`")

    def training_step(self, model, inputs, *args, **kwargs):
        if not getattr(training_step, "done", False):
            training_step.done = True
            images = inputs.get("images")
            out = {k: inputs[k].numpy().tolist() for k in ("input_ids", "labels") if k in inputs}
            if images is not None:
                pixels = images.numpy()
                out["images"] = {"dtype": str(pixels.dtype), "min": float(pixels.min()),
                                 "max": float(pixels.max())}
            with open(path + ".part", "w") as f:
                json.dump(out, f)
            os.replace(path + ".part", path)
        return original(self, model, inputs, *args, **kwargs)

    Trainer.training_step = training_step


def apply() -> None:
    """Apply the workarounds this machine needs; call before ERNIEKit parses arguments."""
    global _applied
    if _applied:
        return
    gpu = has_gpu()
    if not gpu:
        _cpu_detect_device()
        _cpu_no_bf16()
        _cpu_no_fused_rms_norm()
        _cpu_masked_nll()
        _cpu_trainer_logging()
    _fix_eager_mask_width()
    if os.environ.get(DUMP_ENV):
        dump_first_batch(os.environ[DUMP_ENV])
    _applied = True


def train_fields() -> list[str]:
    """Every key `erniekit train` reads; any other key it drops silently (parse_dict)."""
    import dataclasses

    from erniekit.hparams.parser import _TRAIN_ARGS

    return sorted({f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls)})


def check_install() -> None:
    """Run by `make setup-erniekit`: versions, the packages a PyPI wheel lacks, every patch target."""
    import importlib.util

    for pkg, want in EXPECTED.items():
        got = _dist(pkg)
        if pkg == "paddlepaddle" and got is None:
            # A GPU image's paddlepaddle-gpu (3.x); the CPU patches do not apply there.
            got = _dist("paddlepaddle-gpu") or "missing"
            _expect(got.startswith("3."), f"paddlepaddle-gpu is {got}, expected 3.x")
            continue
        _expect(got == want, f"{pkg} is {got}, expected {want}")
    for module in ("ernie", "data_processor", "erniekit.train.ocr_vl_sft"):
        _expect(importlib.util.find_spec(module) is not None, f"{module} is not importable")
    import cv2  # noqa: F401  (headless: must import without libGL)

    apply()
    import erniekit.launcher  # noqa: F401  (what `main` runs)
    _expect(callable(getattr(erniekit.launcher, "launch", None))
            and "run_tuner()" in inspect.getsource(erniekit.launcher.launch),
            "erniekit.launcher.launch no longer runs run_tuner for `train`")
    for name, target in patch_targets().items():
        _expect(getattr(target, "_ocrsft_patched", False), f"workaround {name} did not apply")


def patch_targets() -> dict:
    """What `apply` replaced on this machine, by workaround (all of them on CPU)."""
    import erniekit.utils.process as process
    from ernie.configuration_paddleocr_vl import PaddleOCRVLConfig
    from ernie.modeling_paddleocr_vl import paddle_cross_entropy_by_hand
    from ernie.modeling_paddleocr_vl_ernie import Ernie4_5Model
    from erniekit.hparams.finetuning_args import FinetuningArguments
    from erniekit.train.ocr_vl_sft.pretraining_trainer import PretrainingTrainer

    targets = {"5 eager mask width": Ernie4_5Model._update_causal_mask}
    if not has_gpu():
        parent = next(c for c in FinetuningArguments.__mro__[1:] if "__post_init__" in c.__dict__)
        targets.update({
            "2 detect_device": process.detect_device,
            "3 bf16 off": parent.__post_init__,
            "4 fuse_rms_norm off": PaddleOCRVLConfig.__init__,
            "6 masked nll": paddle_cross_entropy_by_hand,
            "7 trainer logging": PretrainingTrainer._maybe_log_save_evaluate,
        })
    return targets


def _dist(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def logits(model_dir: str, inputs: str, out: str) -> None:
    """ERNIE's own model (what the stage trained) on saved inputs -> logits in `out` (.npz):
    the reference an export is checked against."""
    import numpy as np
    import paddle
    from ernie.configuration_paddleocr_vl import PaddleOCRVLConfig
    from ernie.modeling_paddleocr_vl import PaddleOCRVLForConditionalGeneration

    cfg = PaddleOCRVLConfig.from_pretrained(model_dir)
    cfg.use_cache = False
    cfg.use_flash_attention = has_gpu()
    model = PaddleOCRVLForConditionalGeneration.from_pretrained(model_dir, config=cfg, convert_from_hf=True)
    model.eval()
    x = {k: paddle.to_tensor(v) for k, v in np.load(inputs).items()}
    with paddle.no_grad():
        result = model(**x, return_dict=True).logits.astype("float32").numpy()
    np.savez(out, logits=result)


def main(argv: list[str]) -> int:
    if argv[:1] == ["fields"]:
        print(json.dumps(train_fields()))
        return 0
    if argv[:1] == ["logits"]:
        apply()
        logits(*argv[1:4])
        return 0
    if argv[:1] == ["check"]:
        check_install()
        print("erniekit_ext.compat: ok")
        return 0
    apply()
    import erniekit.launcher

    sys.argv = [erniekit.launcher.__file__, *argv]  # read by erniekit.hparams.read_args
    erniekit.launcher.launch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
