"""Recipes: every shipped config validates (PaddleFormers' own parser agrees); bad ones name the key."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samples.errors import UserError
from training.recipe import parse_overrides, resolve

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl"
GPU_RECIPES = sorted(p.name for p in CONFIGS.glob("*_16k.yaml"))


def recipe(tmp_path, text: str, name="r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_recipe_resolves():
    assert {"full_16k.yaml", "lora_16k.yaml", "table_full_16k.yaml", "formula_full_16k.yaml",
            "chart_full_16k.yaml", "kie_full_16k.yaml"} <= set(GPU_RECIPES)
    for path in sorted(CONFIGS.glob("*.yaml")):
        r = resolve(path)
        assert not {"engine", "recipe_gpus", "scale", "ocr_augmentation", "base"} & set(r.cfg)


@pytest.mark.slow
def test_gpu_recipes_pass_paddleformers_own_parser(tmp_path):
    """After planning, PaddleFormers' PdArgumentParser accepts each GPU recipe as launched."""
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    (tmp_path / "train.stats.json").write_text(json.dumps({"written": 29605}))
    code = f"""
import json, sys
from training.plan import resolve_and_plan
from paddleformers.cli.hparams.parser import _TRAIN_ARGS
from paddleformers.trainer import PdArgumentParser
for name in {GPU_RECIPES!r}:
    r, plan = resolve_and_plan({str(CONFIGS)!r} + "/" + name, dataset={str(data)!r})
    model, data_args, _, _, finetuning = PdArgumentParser(_TRAIN_ARGS).parse_dict(r.cfg)
    print(json.dumps([name, plan.max_steps, finetuning.max_steps, model.lora, data_args.max_seq_len]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r[0]: r[1:] for r in map(json.loads, out.stdout.splitlines())}
    assert rows["full_16k.yaml"] == [926, 926, False, 16384]  # seed 002's Bengali numbers
    assert rows["lora_16k.yaml"][2] is True
    assert rows["formula_full_16k.yaml"][3] == 8192
    assert set(rows) == set(GPU_RECIPES)


def test_base_recipe_is_inherited_and_errors_point_at_the_right_file(tmp_path):
    recipe(tmp_path, "fine_tuning: full\nlearning_rate: 1.0e-4\nmin_lr: 1.0e-6\n", "base.yaml")
    child = recipe(tmp_path, "base: base.yaml\nlearning_rate: 1.0e-5\n", "child.yaml")
    r = resolve(child)
    assert r.cfg == {"fine_tuning": "full", "learning_rate": 1e-5, "min_lr": 1e-6}
    assert r.where("min_lr") == f"{tmp_path / 'base.yaml'}:3: min_lr"
    with pytest.raises(UserError) as e:
        resolve(child, ["learning_rate=1e-7"])
    assert e.value.where == f"{tmp_path / 'base.yaml'}:3: min_lr" and "1e-07" in e.value.reason
    recipe(tmp_path, "base: child2.yaml\n", "loop.yaml")
    recipe(tmp_path, "base: loop.yaml\n", "child2.yaml")
    with pytest.raises(UserError, match="loop"):
        resolve(tmp_path / "loop.yaml")


def test_unknown_keys_name_file_line_and_suggest(tmp_path):
    path = recipe(tmp_path, "fine_tuning: full\n\nlearning_rte: 1.0e-4\n")
    with pytest.raises(UserError) as e:
        resolve(path)
    assert e.value.where == f"{path}:3: learning_rte"
    assert "did you mean learning_rate" in e.value.reason
    with pytest.raises(UserError, match="packing_size: is ERNIEKit's key.*padding_free"):
        resolve(recipe(tmp_path, "fine_tuning: full\npacking_size: 8\n"))
    with pytest.raises(UserError, match=r"override warmup_step=3: .*warmup_steps"):
        resolve(recipe(tmp_path, "fine_tuning: full\n"), ["warmup_step=3"])


def test_bad_yaml_names_file_and_line(tmp_path):
    with pytest.raises(UserError, match=r"bad.yaml:3: invalid YAML"):
        resolve(recipe(tmp_path, "a: 1\nb: 2\n  c: 3\nd: 4\n", "bad.yaml"))
    with pytest.raises(UserError, match="mapping"):
        resolve(recipe(tmp_path, "- a\n- b\n"))
    with pytest.raises(UserError, match="not found"):
        resolve(tmp_path / "nope.yaml")


def test_values_take_the_types_paddleformers_declares(tmp_path):
    # 5e-3 is a number (YAML 1.1 alone would read a string); quoting keeps a string
    assert parse_overrides(["a=5e-3", "b=true", "c=x=y", "d=", "e='5e-3'"]) == \
        {"a": 0.005, "b": True, "c": "x=y", "d": None, "e": "5e-3"}
    r = resolve(recipe(tmp_path, "fine_tuning: full\nlearning_rate: 5e-6\n"),
                ["train_dataset_prob=1.0", "do_eval=false", "max_steps=10.0"])
    assert r.cfg["learning_rate"] == 5e-6           # in the file, too
    assert r.cfg["train_dataset_prob"] == "1.0"     # a string field stays a string
    assert r.cfg["do_eval"] is False and r.cfg["max_steps"] == 10
    with pytest.raises(UserError, match="override max_steps=2.5: .*whole number"):
        resolve(recipe(tmp_path, "fine_tuning: full\n"), ["max_steps=2.5"])
    with pytest.raises(UserError, match="learning_rate"):
        resolve(recipe(tmp_path, "fine_tuning: full\n"), ["learning_rate=fast"])


@pytest.mark.parametrize("overrides, key", [
    (["fine_tuning=ful"], "fine_tuning"),
    (["lora_rank=8"], "lora_rank"),
    (["fine_tuning=LoRA", "lora_rank=8", "lora_alpha=32"], "lora_alpha"),
    (["stage=OCR-VL-SFT"], "stage"),
    (["freeze_config=freeze_vision,freeze_llm"], "freeze_config"),
    (["freeze_config=freeze_vision freeze_aligner freeze_llm"], "freeze_config"),
    (["bf16=true", "fp16=true"], "fp16"),
    (["min_lr=1.0"], "min_lr"),
    (["_attn_implementation=flashmask", "use_attn_mask_startend_row_indices=false"],
     "use_attn_mask_startend_row_indices"),
    (["gradient_accumulation_steps=0"], "gradient_accumulation_steps"),
    (["do_eval=true"], "do_eval"),
    (["train_dataset_path=a.jsonl,b.jsonl", "train_dataset_prob=1.0"], "train_dataset_prob"),
    (["engine=jax"], "engine"),
    (["scale=double"], "scale"),
    (["recipe_gpus=0"], "recipe_gpus"),
])
def test_contradictions_are_refused_naming_the_key(tmp_path, overrides, key):
    path = recipe(tmp_path, "fine_tuning: full\nlearning_rate: 1.0e-4\n")
    with pytest.raises(UserError) as e:
        resolve(path, overrides)
    assert e.value.where.startswith(f"override {key}=") or e.value.where.endswith(f": {key}")


def test_fine_tuning_must_be_chosen(tmp_path):
    """PaddleFormers silently defaults to LoRA; a recipe must say which it wants."""
    with pytest.raises(UserError, match="fine_tuning: is not set.*LoRA"):
        resolve(recipe(tmp_path, "learning_rate: 1.0e-4\n"))


def test_each_engine_is_checked_by_its_own_section(tmp_path):
    """One table picks the section: PaddleFormers' names an unknown key, the torch one its values."""
    from training.recipe import ENGINES, SECTIONS

    assert set(SECTIONS) == set(ENGINES)
    for engine in ("paddleformers", "erniekit"):
        with pytest.raises(UserError, match=r"r.yaml:3: lora_rnk: unknown key \(did you mean lora_rank"):
            resolve(recipe(tmp_path, f"engine: {engine}\nfine_tuning: lora\nlora_rnk: 8\n"))
    with pytest.raises(UserError, match=r"r.yaml:2: fine_tuning: 'bogus' is not lora or full"):
        resolve(recipe(tmp_path, "engine: torch\nfine_tuning: bogus\n"))
    with pytest.raises(UserError, match=r"override template=nope: 'nope' is not one of"):
        resolve(recipe(tmp_path, "engine: torch\n"), ["template=nope"])
    assert resolve(recipe(tmp_path, "engine: torch\nlora_rnk: 8\n")).cfg == {"lora_rnk": 8}


def test_the_torch_engine_keeps_its_own_schema(tmp_path):
    r = resolve(recipe(tmp_path, "engine: torch\nlora_target_modules: [q_proj]\n"))
    assert r.engine == "torch" and r.cfg == {"lora_target_modules": ["q_proj"]}
