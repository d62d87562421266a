"""The torch engine's section of the recipe schema: ERNIEKit/HF names, defaults, and checks.

Every key a bridge YAML may hold is a field here; configs/bridge/*.yaml
comment each one. Unknown keys are listed (not fatal: a recipe may carry keys
for the Paddle engines too).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from models.templates import TEMPLATES
from samples.errors import UserError
from training.recipe import FREEZE, Recipe  # PaddleFormers' freeze_config words, for every engine

# LoRA targets in LLaMA spelling; each family maps them to its towers' names (engines/bridge/families.py).
CANONICAL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class Settings:
    model_name_or_path: str
    train_dataset_path: str
    image_root: str | None = None           # confine images here (default: paths as written)
    template: str | None = None             # default: the family's (chatml, paddleocr_vl)
    system_prompt: str | None = None
    max_seq_len: int = 2048
    max_image_size: int | None = None       # longest image side, pixels (seed 000)
    fine_tuning: str = "lora"               # lora | full
    lora_rank: int = 8
    lora_alpha: int | None = None           # default 2 x rank
    lora_dropout: float = 0.05
    lora_target_modules: list = field(default_factory=lambda: list(CANONICAL))
    lora_towers: list = field(default_factory=lambda: ["language"])
    freeze_config: str = ""                 # e.g. "freeze_vision freeze_llm" (stage 1, seed 004)
    learning_rate: float = 1e-4
    mm_projector_lr: float | None = None    # the projector's own rate (seed 003: 1e-3)
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "cosine"       # cosine | linear | constant
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    min_lr: float = 0.0
    num_train_epochs: float = 1
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    use_4bit: bool = False
    use_8bit: bool = False
    bf16: bool = False
    logging_steps: int = 1
    logging_dir: str | None = None          # default: <run>/tensorboard
    report_to: str = "tensorboard"          # tensorboard | none
    save_steps: int = 0                     # 0: save only at the end
    save_total_limit: int = 2
    seed: int = 42
    group_buffer: int = 16                  # batches sorted together by length
    fsdp: bool = False                      # under torchrun: shard weights, grads, optimizer (FSDP2)
    output_dir: str | None = None
    assemble: dict | None = None            # {language_model, vision_model}: build model_name_or_path first

    @classmethod
    def from_cfg(cls, cfg: dict) -> "Settings":
        names = {f.name for f in fields(cls)}
        for key in ("model_name_or_path", "train_dataset_path"):
            if not cfg.get(key):
                raise UserError(key, "is not set (engine: torch)")
        ignored = sorted(k for k in cfg if k not in names)
        if ignored:
            print(f"train: the torch engine ignores {', '.join(ignored)}", file=sys.stderr)
        s = cls(**{k: v for k, v in cfg.items() if k in names})
        s.check()
        return s

    def check(self) -> None:
        self.check_values()
        if not Path(self.model_name_or_path).is_dir():
            raise UserError("model_name_or_path", f"{self.model_name_or_path} is not a local folder "
                                                  "(nothing is downloaded)")
        self.lora_alpha = self.lora_alpha or 2 * self.lora_rank
        for key in ("learning_rate", "mm_projector_lr", "min_lr", "weight_decay"):
            if getattr(self, key) is not None:
                setattr(self, key, float(getattr(self, key)))

    def check_values(self) -> None:
        """The checks that need no files (also run by `resolve`, before anything starts)."""
        self.fine_tuning = str(self.fine_tuning).lower()
        if self.fine_tuning not in ("lora", "full"):
            raise UserError("fine_tuning", f"{self.fine_tuning!r} is not lora or full")
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = [m.strip() for m in self.lora_target_modules.split(",")]
        if isinstance(self.lora_towers, str):
            self.lora_towers = [t.strip() for t in self.lora_towers.split(",")]
        unknown = [w for w in self.freeze_config.split() if w not in FREEZE]
        if unknown:
            raise UserError("freeze_config", f"{unknown} not among {list(FREEZE)}")
        if self.template is not None and self.template not in TEMPLATES:
            raise UserError("template", f"{self.template!r} is not one of {sorted(TEMPLATES)}")
        if self.lr_scheduler_type not in ("cosine", "linear", "constant"):
            raise UserError("lr_scheduler_type", f"{self.lr_scheduler_type!r} is not cosine, "
                                                 "linear or constant")
        for key in ("max_seq_len", "per_device_train_batch_size", "gradient_accumulation_steps",
                    "logging_steps"):
            try:
                number = int(getattr(self, key))
            except (TypeError, ValueError):
                raise UserError(key, f"{getattr(self, key)!r} is not a whole number") from None
            if number < 1:
                raise UserError(key, "must be at least 1")

    def frozen(self, tower: str) -> bool:
        word = {"vision": "freeze_vision", "language": "freeze_llm", "projector": "freeze_aligner"}
        return word[tower] in self.freeze_config.split()


def check(r: Recipe) -> None:
    """`resolve`'s part: the value checks, naming the recipe line. Required keys and the model
    folder wait for the bridge's start (`Settings.from_cfg`): `ocrsft plan` may precede both."""
    names = {f.name for f in fields(Settings)}
    s = Settings(**{"model_name_or_path": "", "train_dataset_path": "",
                    **{k: v for k, v in r.cfg.items() if k in names}})
    try:
        s.check_values()
    except UserError as e:
        raise r.fail(e.where, e.reason) from None
