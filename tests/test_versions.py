"""PaddleOCR-VL v1 / 1.5 / 1.6: the version is read from the model folder and picks
template, served prompt, paddlex model name and doc_parser pipeline; each version
trains, exports, is served by its own `paddleocr doc_parser` pipeline with parity
identical; the v1-template-on-1.5 trap users report is caught by `ocrsft parity`."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference.export import export
from models import model_folder
from ocrsft.cli import main
from ocrsft.train import check_version
from samples.errors import UserError
from tests.fixtures_model import tiny_train_config, train_in_subprocess
from training.recipe import resolve


@pytest.fixture(scope="module")
def tiny15(tmp_path_factory) -> Path:
    from engines.paddleformers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny15") / "model", version="1.5")


@pytest.fixture(scope="module")
def tiny16(tmp_path_factory) -> Path:
    from engines.paddleformers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny16") / "model", version="1.6")


def train(model: Path, data: Path, out: Path, template: str) -> Path:
    """12 steps (as the v1 fixture) in a subprocess, as `ocrsft train` runs on CPU, with
    the template given: what a user's own script does (`ocrsft train` refuses a mismatch)."""
    cfg = tiny_train_config(model, data, out, steps=12)
    cfg["template"] = template
    return train_in_subprocess(cfg, out)


@pytest.fixture(scope="module")
def val(digit_lines) -> Path:
    path = digit_lines.parent / "versions_val.jsonl"
    path.write_text("\n".join(digit_lines.read_text().splitlines()[:3]) + "\n")
    return path


def parity(model, data, capsys) -> tuple[int, str]:
    rc = main(["parity", str(model), "--data", str(data), "--samples", "3"])
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("parity:")]
    assert len(said) == 1
    return rc, said[0]


# --- the version is a property of the folder --------------------------------------------

def test_each_tiny_folder_says_its_version(tiny_model, tiny15, tiny16):
    for folder, name, pdx in ((tiny_model, "1", "PaddleOCR-VL-0.9B"), (tiny15, "1.5", "PaddleOCR-VL-1.5-0.9B"),
                              (tiny16, "1.6", "PaddleOCR-VL-1.6-0.9B")):
        version, why = model_folder.detect_version(folder)
        assert (version.name, version.paddlex_model_name) == (name, pdx)
        assert why == f"inference.yml model_name {pdx}"
    assert model_folder.detect_version(tiny15)[0].train_template == "paddleocr_vl_v15"
    assert model_folder.detect_version(tiny_model)[0].train_template == "paddleocr_vl"
    assert (tiny15 / "chat_template.jinja").read_text() == (tiny16 / "chat_template.jinja").read_text()
    assert model_folder.detect_version(tiny15, override="1.6")[0].name == "1.6"  # the recipe key wins


def test_without_inference_yml_the_chat_template_decides(tiny_model, tiny15, tmp_path):
    v1 = tmp_path / "v1"
    shutil.copytree(tiny_model, v1)
    (v1 / "inference.yml").unlink()
    assert model_folder.detect_version(v1) == (model_folder.VERSIONS["1"],
                                               "chat_template.jinja ends the prompt with 'Assistant: '")
    v15 = tmp_path / "v15"
    shutil.copytree(tiny15, v15)
    (v15 / "inference.yml").unlink()
    with pytest.raises(UserError, match=r"PaddleOCR-VL 1.5 or 1.6\) and there is no inference.yml.*"
                                        "set model_version"):
        model_folder.detect_version(v15)


def test_a_v1_chat_template_in_a_15_folder_is_refused(tiny_model, tiny15, tmp_path):
    """Seed 002 says 'copy chat_template.jinja from the base': from a v1 base into 1.5 is the trap."""
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny15, mixed)
    shutil.copy2(tiny_model / "chat_template.jinja", mixed / "chat_template.jinja")
    with pytest.raises(UserError, match=r"chat_template.jinja: ends the prompt with 'Assistant: ', but "
                                        r"inference.yml model_name PaddleOCR-VL-1.5-0.9B is PaddleOCR-VL 1.5"):
        model_folder.detect_version(mixed)


def write_recipe(tmp_path, model, data, template_line) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""# a v1 recipe pointed at a 1.5 folder
engine: paddleformers
model_name_or_path: {model}
stage: VL-SFT
fine_tuning: full
{template_line}
template_backend: custom
train_dataset_type: erniekit
train_dataset_path: {data}
train_dataset_prob: "1.0"
max_seq_len: 64
per_device_train_batch_size: 4
max_steps: 2
learning_rate: 1.0e-3
output_dir: {tmp_path / "run"}
""")
    return recipe


def test_a_recipe_with_another_versions_template_stops_before_training(tiny15, digit_lines, tmp_path,
                                                                       capsys):
    recipe = write_recipe(tmp_path, tiny15, digit_lines, "template: paddleocr_vl")
    rc = main(["train", str(recipe)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err.startswith(f"ocrsft train: error: {recipe}:6: template: paddleocr_vl is PaddleOCR-VL 1's "
                          f"template, but {tiny15} is PaddleOCR-VL 1.5 (inference.yml model_name "
                          "PaddleOCR-VL-1.5-0.9B), served with a prompt ending 'Assistant:\\n': use "
                          "template: paddleocr_vl_v15")
    assert not (tmp_path / "run").exists()  # nothing was launched, nothing written


def test_the_folder_fills_a_missing_template_and_model_version_overrides(tiny15, digit_lines, tmp_path):
    recipe = resolve(write_recipe(tmp_path, tiny15, digit_lines, "model_version: auto"))
    check_version(recipe)
    assert recipe.cfg["template"] == "paddleocr_vl_v15"
    forced = resolve(write_recipe(tmp_path, tiny15, digit_lines, "template: paddleocr_vl\nmodel_version: 1"))
    check_version(forced)  # the user says the folder is v1: detection is overridden
    bad = resolve(write_recipe(tmp_path, tiny15, digit_lines, "model_version: 2.0"))
    with pytest.raises(UserError, match=r"recipe.yaml:6: model_version: 2.0 is not one of 1, 1.5, 1.6"):
        check_version(bad)


# --- each version end to end ----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_version_trains_exports_is_served_by_its_pipeline_with_parity(version, tiny15, tiny16, digit_lines,
                                                                      val, tmp_path, capsys):
    from inference.predict import predict_file

    base = tiny15 if version == "1.5" else tiny16
    run = train(base, digit_lines, tmp_path / "run", "paddleocr_vl_v15")
    out = export(run, tmp_path / "export", base=base)
    v = model_folder.VERSIONS[version]
    assert (out / "inference.yml").read_text().strip().endswith(v.paddlex_model_name)
    assert model_folder.read_training_record(out) == {
        "template": "paddleocr_vl_v15", "version": version, "paddlex_model_name": v.paddlex_model_name}
    rc, said = parity(out, val, capsys)
    assert (rc, said) == (0, "parity: 3 samples, identical")
    # A base downloaded without inference.yml cannot tell 1.5 from 1.6: export asks, and is told.
    hf = tmp_path / "hf_base"
    shutil.copytree(base, hf)
    (hf / "inference.yml").unlink()
    with pytest.raises(UserError, match="set model_version"):
        export(run, tmp_path / "again", base=hf, verify=False)
    assert main(["export", str(run), "-o", str(tmp_path / "told"), "--base", str(hf), "--model-version",
                 version, "--no-verify"]) == 0
    assert model_folder.detect_version(tmp_path / "told")[0] == v
    if version == "1.5":  # the Python pipeline, against the bare predictor
        native = predict_file(out, val, tmp_path / "a.jsonl", max_new_tokens=6, progress=False)
        piped = predict_file(out, val, tmp_path / "b.jsonl", via="doc-parser", max_new_tokens=6,
                             progress=False)
        assert native == piped == {"predicted": 3, "errors": 0, "skipped": 0}
        read = [[json.loads(x)["prediction"] for x in (tmp_path / f).read_text().splitlines()]
                for f in ("a.jsonl", "b.jsonl")]
        assert read[0] == read[1]
    else:  # the CLI, with its own pipeline version and model name
        img = next((digit_lines.parent / "images").glob("*.png"))
        cmd = [sys.executable, "-m", "paddleocr", "doc_parser", "-i", str(img),
               "--pipeline_version", v.pipeline_version, "--vl_rec_model_name", v.paddlex_model_name,
               "--vl_rec_model_dir", str(out), "--use_layout_detection", "False",
               "--device", "cpu", "--save_path", str(tmp_path)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        res = json.loads((tmp_path / f"{img.stem}_res.json").read_text())
        assert res["parsing_res_list"][0]["block_label"] == "ocr"


@pytest.mark.slow
def test_training_a_15_folder_with_the_v1_template_is_caught_by_parity(tiny15, digit_lines, val, tmp_path,
                                                                      capsys):
    """PaddleOCR #17589, ERNIE #1440/#1442, unsloth #6661: v1 scripts on a 1.5 model."""
    run = train(tiny15, digit_lines, tmp_path / "run", "paddleocr_vl")
    out = export(run, tmp_path / "export", base=tiny15)
    assert "WARNING" in capsys.readouterr().out  # export already says so
    rc, said = parity(out, val, capsys)
    assert rc == 1
    m = re.fullmatch(r"parity: 3 of 3 samples differ; first versions_val.jsonl:1 at token (\d+): "
                     r"trained '▁' \((\d+)\), served '(.+)' \((\d+)\)", said)
    assert m, said
    # The token right after "Assistant:": v1 trained a space, 1.5 serves a newline.
    from paddleformers.transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok.encode("\n", add_special_tokens=False)
    ids = ids["input_ids"] if isinstance(ids, dict) else ids
    assert [m[3]] == tok.convert_ids_to_tokens(list(ids))
    served = model_folder.read_training_record(out)
    assert served["template"] == "paddleocr_vl" and served["version"] == "1.5"


def test_tiny_model_cli_version_flag(tmp_path, capsys):
    rc = main(["tiny-model", str(tmp_path / "m"), "--version", "1.6"])
    assert rc == 0
    assert "PaddleOCR-VL 1.6 as PaddleOCR-VL-1.6-0.9B" in capsys.readouterr().out
    assert model_folder.detect_version(tmp_path / "m")[0].pipeline_version == "v1.6"


@pytest.mark.slow
def test_15_lora_convert_train_export_parity_eval_through_the_cli(tiny15, shared_data, tmp_path, capsys):
    """The user's path on real word crops: convert, `ocrsft train` (LoRA, the CPU recipe with the
    1.5 template), `ocrsft export` (merge), parity against the recorded template, infer, eval."""
    src = shared_data / "paddleocr_rec"
    assert main(["convert", "paddleocr-rec", str(src / "rec_gt_test.txt"), "-o", str(tmp_path / "train.jsonl"),
                 "--image-root", str(src)]) == 0
    recipe = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl" / "cpu_tiny.yaml"
    # In a child process, as test_train_cli does: training leaves paddle state behind.
    res = subprocess.run(
        [sys.executable, "-m", "ocrsft", "train", str(recipe), f"model_name_or_path={tiny15}",
         "template=paddleocr_vl_v15", f"train_dataset_path={tmp_path / 'train.jsonl'}",
         f"output_dir={tmp_path / 'run'}", "fine_tuning=LoRA", "lora_rank=8", "learning_rate=1e-2",
         "max_steps=6", "do_eval=false", "evaluation_strategy=no", "eval_generation_samples=0",
         "save_strategy=no"], capture_output=True, text=True, timeout=600)
    out = res.stdout
    assert res.returncode == 0, res.stderr[-3000:]
    assert ("check: PaddleOCR-VL 1.5 (inference.yml model_name PaddleOCR-VL-1.5-0.9B): template "
            "paddleocr_vl_v15, served as PaddleOCR-VL-1.5-0.9B") in out
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "export")]) == 0
    out = capsys.readouterr().out
    assert "merged the LoRA adapter" in out and "--pipeline_version v1.5" in out and "WARNING" not in out
    assert model_folder.read_training_record(tmp_path / "export")["template"] == "paddleocr_vl_v15"
    val = tmp_path / "val.jsonl"
    val.write_text("".join((tmp_path / "train.jsonl").read_text().splitlines(keepends=True)[:3]))
    # The converter's image paths climb out of tmp_path to ../shared: name the root they live under.
    assert main(["parity", str(tmp_path / "export"), "--data", str(val), "--image-root", "/"]) == 0
    assert "parity: 3 samples, identical" in capsys.readouterr().out
    assert main(["infer", str(tmp_path / "export"), "--data", str(val), "-o", str(tmp_path / "pred.jsonl"),
                 "--max-new-tokens", "8", "--image-root", "/"]) == 0
    assert main(["eval", str(tmp_path / "pred.jsonl"), "-o", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["ocr"]["samples"] == 3 and metrics["ocr"]["errors"] == 0


@pytest.mark.parametrize("name,lr,min_lr,tuning", [("v15_full_16k", 5e-6, 5e-7, "full"),
                                                   ("v15_lora_16k", 5e-4, 5e-5, "LoRA"),
                                                   ("v16_full_16k", 5e-6, 5e-7, "full"),
                                                   ("v16_lora_16k", 5e-4, 5e-5, "LoRA")])
def test_15_and_16_recipes_carry_the_best_practice_values(name, lr, min_lr, tuning, tiny_model, tiny15,
                                                          tiny16, digit_lines):
    path = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl" / f"{name}.yaml"
    folder = tiny15 if name.startswith("v15") else tiny16
    r = resolve(path, [f"model_name_or_path={folder}", f"train_dataset_path={digit_lines}"])
    c = r.cfg
    assert (c["learning_rate"], c["min_lr"], c["fine_tuning"], c["template"]) == (lr, min_lr, tuning,
                                                                                   "paddleocr_vl_v15")
    assert (c["warmup_ratio"], c["num_train_epochs"], c["per_device_train_batch_size"]) == (0.1, 2, 16)
    assert c.get("lora_rank", 8) == 8 and r.ours["ocr_augmentation"] is False
    assert "examples/best_practices/PaddleOCR-VL-1.5" in path.read_text() + (path.parent / "v15_full_16k.yaml").read_text()
    check_version(r)  # the folder of its version passes ...
    wrong = resolve(path, [f"model_name_or_path={tiny_model}", f"train_dataset_path={digit_lines}"])
    with pytest.raises(UserError, match=r"v15_full_16k.yaml:\d+: template: paddleocr_vl_v15 is PaddleOCR-VL "
                                        r"1.5 and 1.6's template, but .* is PaddleOCR-VL 1 "):
        check_version(wrong)  # ... a v1 folder is refused, naming the line in the base recipe


def test_erniekit_engine_refuses_a_15_folder(tiny15, digit_lines, tmp_path):
    """ERNIEKit's OCR-VL-SFT writes v1's "\\nAssistant: " whatever the model (ERNIE #1440, #1442)."""
    recipe = resolve(write_recipe(tmp_path, tiny15, digit_lines, "model_version: auto"), ["engine=erniekit"])
    with pytest.raises(UserError, match=r"override engine=erniekit: erniekit builds PaddleOCR-VL v1's "
                                        r"prompt .* is PaddleOCR-VL 1.5 .* use engine: paddleformers"):
        check_version(recipe)


def test_inference_yml_is_read_as_paddlex_reads_it(tiny15, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny15, folder)
    (folder / "inference.yml").write_text("Hpi:\n  model_name: other\nGlobal:\n  model_name: PaddleOCR-VL-1.5-0.9B\n"
                                          "  model_format: safetensors\n")
    assert model_folder.detect_version(folder)[0].name == "1.5"
    (folder / "inference.yml").write_text("Global:\n  model_name: PP-DocBee-2B\n")
    with pytest.raises(UserError, match="inference.yml: model_name PP-DocBee-2B is no PaddleOCR-VL version"):
        model_folder.detect_version(folder)


def test_a_folder_that_cannot_tell_15_from_16_still_trains(tiny15, digit_lines, tmp_path, capsys):
    folder = tmp_path / "hf_download"
    shutil.copytree(tiny15, folder)
    (folder / "inference.yml").unlink()  # both versions train with the same template
    recipe = resolve(write_recipe(tmp_path, folder, digit_lines, "model_version: auto"))
    check_version(recipe)
    assert recipe.cfg["template"] == "paddleocr_vl_v15"
    assert ("check: PaddleOCR-VL 1.5 (chat_template.jinja ends the prompt with 'Assistant:\\n': 1.5 or 1.6, "
            "trained alike): template paddleocr_vl_v15") in capsys.readouterr().out
    bare = tmp_path / "bare"
    shutil.copytree(tiny15, bare)
    for name in ("inference.yml", "chat_template.jinja"):
        (bare / name).unlink()
    with pytest.raises(UserError, match="has neither inference.yml nor chat_template.jinja"):
        check_version(resolve(write_recipe(tmp_path, bare, digit_lines, "model_version: auto")))
    v1 = resolve(write_recipe(tmp_path, bare, digit_lines, "template: paddleocr_vl"))
    check_version(v1)  # the recipe's template is the only word on it: v1
    assert "check: PaddleOCR-VL 1 (the folder does not say; template paddleocr_vl is 1's)" in capsys.readouterr().out
