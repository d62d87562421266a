"""The one engine interface: every engine answers the same five calls, and the folder
alone decides which engine trains, exports and serves (engines/__init__.py)."""
from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest

import engines
from training.recipe import ENGINES as RECIPE_ENGINES
from training.run_folder import write_marker

INTERFACE = ("launch", "is_run", "export", "serves", "predictor")


def test_the_recipe_names_exactly_the_engines_there_are():
    assert tuple(engines.ENGINES) == tuple(RECIPE_ENGINES)
    assert set(engines.CLAIM_ORDER) == set(engines.ENGINES)


@pytest.mark.parametrize("name", list(engines.ENGINES))
def test_every_engine_implements_the_interface(name):
    module = engines.engine(name)
    for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
        importlib.import_module(f"{module.__name__}.{sub.name}")  # one named like a call shadows it
    for call in INTERFACE:
        assert inspect.isfunction(getattr(module, call, None)), f"{module.__name__}.{call}"
    launch = inspect.signature(module.launch).parameters
    assert list(launch)[:3] == ["recipe", "cfg", "run_dir"]
    assert {"resume", "lay", "nproc_per_node"} <= set(launch)
    assert list(inspect.signature(module.predictor).parameters) == [
        "model_dir", "max_new_tokens", "device", "batch_size"]
    assert list(inspect.signature(module.export).parameters)[:3] == ["run_dir", "out", "base"]


def test_a_run_folder_names_its_engine(tmp_path):
    plain, ernie, bridge = (tmp_path / n for n in ("pf", "ek", "torch"))
    for d in (plain, ernie, bridge):
        d.mkdir()
    (ernie / "resolved_erniekit.yaml").write_text("stage: OCR-VL-SFT\n")
    write_marker(bridge, {"base": "x"})
    assert [engines.engine_of_run(d) for d in (plain, ernie, bridge)] == [
        "paddleformers", "erniekit", "torch"]


def test_a_model_folder_names_the_engine_that_serves_it(tmp_path):
    paddle, llava = tmp_path / "paddle", tmp_path / "llava"
    for d, model_type in ((paddle, "paddleocr_vl"), (llava, "llava")):
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert engines.engine_of_model(paddle) == "paddleformers"
    assert engines.engine_of_model(llava) == "torch"


def test_export_of_a_missing_run_names_it(tmp_path):
    from samples.errors import UserError

    with pytest.raises(UserError, match="run folder not found"):
        engines.export(tmp_path / "nope", tmp_path / "out")
