"""The torch engine on a tiny LLaVA: masking, truncation, rejects, memorise -> export -> generate,
resume after a crash, and its refusals. Shared fixtures live in tests/fixtures_bridge.py.

Everything that needs torch-enabled transformers runs through `in_torch`: here when this
pytest process has not imported paddleformers, else in a fresh interpreter (the bridge's
own isolation), so these tests hold in any order of the full suite.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from samples.errors import SampleError, UserError
from samples.sample import make_sample
from tests.fixtures_bridge import engine_cfg, in_torch, rec_jsonl

# --- data: masking, image blocks, truncation --------------------------------------------


def _encode_cases(model_dir: str, image: str) -> dict:
    from engines.bridge import families
    from engines.bridge.data import Codec, collate

    fam, _, processor = families.load(Path(model_dir))
    codec, tok = Codec(fam, processor), processor.tokenizer
    root = Path(image).parent
    two_turns = {"image_info": [{"image_url": image, "matched_text_index": 0}],
                 "text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "JOINT", "tag": "no_mask"},
                               {"text": "Again:", "tag": "mask"}, {"text": "yes", "tag": "no_mask"}]}
    image_id = tok.convert_tokens_to_ids(fam.image_placeholder)

    def summary(ex):
        return {"len": len(ex), "truncated": ex.truncated, "images": ex.input_ids.count(image_id),
                "learned": tok.decode([t for t, l in zip(ex.input_ids, ex.labels) if l != -100]),
                "image_labels": sorted({l for t, l in zip(ex.input_ids, ex.labels) if t == image_id})}

    full = codec.encode(two_turns, root, root, 512)
    first_turn = codec.encode({**two_turns, "text_info": two_turns["text_info"][:2]}, root, root, 512)
    try:
        codec.encode(two_turns, root, root, 10)
        too_long = None
    except SampleError as e:
        too_long = e.reason
    short = codec.encode(two_turns, root, root, len(full) - 3)
    batch = collate([full, short], tok.pad_token_id)
    return {"full": summary(full), "short": summary(short), "first_turn_len": len(first_turn),
            "dropped": summary(codec.encode(two_turns, root, root, len(first_turn) + 2)),
            "too_long": too_long, "shapes": {k: list(v.shape) for k, v in batch.items()},
            "pad_labels": batch["labels"][1, len(short):].tolist()}


def test_only_answers_are_learned_and_image_blocks_stay_whole(tiny_bridge, shared_data):
    image = str(shared_data / "paddleocr_rec" / "train" / "word_1.png")
    r = in_torch(_encode_cases, str(tiny_bridge["llava-clip"]), image)
    full, short, dropped = r["full"], r["short"], r["dropped"]
    assert full["learned"] == "JOINT<|im_end|>\nyes<|im_end|>\n" and not full["truncated"]
    assert full["images"] == 16 and full["image_labels"] == [-100]  # 56 px / 14 px, CLS dropped
    # 3 tokens short: the last answer is cut, nothing else.
    assert short["truncated"] and short["len"] == full["len"] - 3 and short["images"] == 16
    assert full["learned"].startswith(short["learned"]) and short["learned"].startswith("JOINT<|im_end|>\ny")
    # Room for 2 more tokens after turn 1: turn 2's prompt never fits, so the turn goes whole.
    assert dropped["truncated"] and dropped["len"] == r["first_turn_len"]
    assert dropped["learned"] == "JOINT<|im_end|>\n"
    assert r["too_long"].startswith("too_long")  # the first prompt alone is over: rejected, not cut
    assert r["shapes"]["pixel_values"] == [2, 3, 56, 56] and r["shapes"]["labels"][0] == 2
    assert set(r["pad_labels"]) == {-100}


# --- the engine end to end -----------------------------------------------------------------


def _memorise(model: str, data: str, image_root: str, run: str) -> dict:
    from engines.bridge import generate, merge, train
    from training.monitor import read_scalars

    run = Path(run)
    train.run(engine_cfg(Path(model), Path(data), Path(image_root), fine_tuning="full",
                         learning_rate=2e-2, max_steps=30, per_device_train_batch_size=1,
                         warmup_steps=2, save_steps=0), run)
    export = merge.export(run, run / "export")
    sample = json.loads(Path(data).read_text().splitlines()[0])
    said = list(generate.predict(export, [{"prompt": "OCR:", "image": sample["image_info"][0]["image_url"]}],
                                 max_new_tokens=24))
    return {"said": said, "loss": [v for _, v in read_scalars(run / "tensorboard", "train/loss")],
            "marker": json.loads((run / "ocrsft_run.json").read_text()),
            "meta": json.loads((export / "ocrsft_bridge.json").read_text()),
            "files": sorted(p.name for p in run.iterdir())}


def test_full_finetune_memorises_then_export_generates_it(tiny_bridge, shared_data, tmp_path):
    data = rec_jsonl(shared_data, tmp_path / "one.jsonl", n=1)
    r = in_torch(_memorise, str(tiny_bridge["llava-clip"]), str(data), str(shared_data), str(tmp_path / "run"))
    assert r["said"] == ["Genaxis Theatre"]   # the reloaded export answers what it was taught
    assert r["loss"][-1] < 0.1 * r["loss"][0]
    assert r["marker"]["engine"] == "torch" and r["marker"]["family"] == "llava"
    assert r["marker"]["steps"] == 30 and r["marker"]["changed"] == ["language", "projector", "vision"]
    assert r["meta"]["fine_tuning"] == "full" and r["meta"]["template"] == "chatml"
    assert {"final", "loss.png", "tensorboard", "data.json", "ocrsft_run.json"} <= set(r["files"])


def _crash_then_resume(model: str, data: str, image_root: str, root: str) -> dict:
    from safetensors.torch import load_file

    from engines.bridge import checkpoint, train
    from training.monitor import read_scalars

    root = Path(root)
    cfg = engine_cfg(Path(model), Path(data), Path(image_root), learning_rate=1e-2,
                     mm_projector_lr=2e-2, max_steps=6, per_device_train_batch_size=2,
                     save_steps=3, warmup_steps=1, lora_dropout=0.1)
    train.run(cfg, root / "straight")
    original = checkpoint.save

    def save_then_die(*args, **kwargs):
        original(*args, **kwargs)
        raise RuntimeError("simulated kill after the first checkpoint")

    checkpoint.save = save_then_die
    try:
        train.run(cfg, root / "crashed")
    except RuntimeError as e:
        died = str(e)
    finally:
        checkpoint.save = original
    train.run(cfg, root / "crashed", resume=True)

    def final(run):
        return load_file(str(run / "final" / "adapter_model.safetensors"))

    a, b = final(root / "straight"), final(root / "crashed")
    return {"died": died, "max_diff": max(float((a[k] - b[k]).abs().max()) for k in a),
            "same_keys": sorted(a) == sorted(b),
            "loss_a": dict(read_scalars(root / "straight" / "tensorboard", "train/loss")),
            "loss_b": dict(read_scalars(root / "crashed" / "tensorboard", "train/loss"))}


def test_a_crashed_run_resumes_to_the_same_weights(tiny_bridge, rec_data, shared_data, tmp_path):
    r = in_torch(_crash_then_resume, str(tiny_bridge["llava-clip"]), str(rec_data), str(shared_data),
                 str(tmp_path))
    assert "simulated kill" in r["died"]
    assert r["same_keys"] and r["max_diff"] < 1e-6
    assert all(abs(r["loss_a"][s] - r["loss_b"][s]) < 1e-5 for s in (4, 5, 6))


def test_bad_samples_are_counted_not_lost(tiny_bridge, rec_data, shared_data, tmp_path):
    data = tmp_path / "mixed.jsonl"
    good = rec_data.read_text().splitlines()[:3]
    data.write_text("\n".join(good + [
        json.dumps(make_sample(["/etc/passwd"], [("OCR:", "x")])),            # outside the root
        json.dumps(make_sample([str(shared_data / "nope.png")], [("OCR:", "x")])),
        json.dumps({"text_info": [{"text": "OCR:", "tag": "no_mask"}]}),     # bad tags
    ]) + "\n")
    from engines.bridge import train

    train.run(engine_cfg(tiny_bridge["llava-clip"], data, shared_data, max_steps=1), tmp_path / "run")
    counts = json.loads((tmp_path / "run" / "data.json").read_text())
    assert (counts["read"], counts["used"], counts["rejected"]) == (6, 3, 3)
    assert counts["reject_reasons"] == {"path_escape": 1, "bad_image": 1, "bad_tags": 1}
    assert [r["line"] for r in counts["rejects"]] == [4, 5, 6]


def _mistakes(model: str, data: str, image_root: str, tmp: str) -> list:
    from engines.bridge import train

    cases = [dict(fine_tuning="qlora"), dict(freeze_config="freeze_all"),
             dict(lora_target_modules=["qkv"]), dict(model_name_or_path=str(Path(tmp) / "none")),
             dict(use_4bit=True, use_8bit=True), dict(fine_tuning="full", freeze_config="freeze_vision "
                                                      "freeze_llm freeze_aligner")]
    wheres = []
    for extra in cases:
        try:
            train.run(engine_cfg(Path(model), Path(data), Path(image_root), **extra), Path(tmp) / "x")
            wheres.append(None)
        except UserError as e:
            wheres.append(e.where)
    return wheres


def test_recipe_mistakes_are_one_line_errors(tiny_bridge, rec_data, shared_data, tmp_path):
    from engines.bridge import quant
    from engines.bridge.families import FAMILIES

    assert in_torch(_mistakes, str(tiny_bridge["llava-clip"]), str(rec_data), str(shared_data),
                    str(tmp_path)) == ["fine_tuning", "freeze_config", "lora_target_modules",
                                       "model_name_or_path", "use_4bit/use_8bit", "freeze_config"]
    with pytest.raises(UserError, match="pip install bitsandbytes"):
        quant.config_for({"use_4bit": True}, FAMILIES["llava"], available=lambda name: False)
