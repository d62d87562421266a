"""Every native family through train -> export -> reload -> generate, on its tiny model and the
real PaddleOCR crops; the remote-code families' messages; the InternVL2 weight converter."""
from __future__ import annotations

from pathlib import Path

import pytest

from engines.bridge.tiny import BUILDERS
from samples.errors import UserError
from tests.fixtures_bridge import engine_cfg, in_torch

NATIVE = [k for k in BUILDERS if k not in ("qwen2-lm", "chinese-clip")]


def _roundtrip_all(models: dict, data: str, image_root: str, root: str) -> dict:
    import json

    import torch

    from engines.bridge import families, generate, merge, train
    from engines.bridge.data import Codec
    from training.monitor import read_scalars

    out = {}
    for kind in NATIVE:
        run = Path(root) / kind
        train.run(engine_cfg(Path(models[kind]), Path(data), Path(image_root), learning_rate=1e-2,
                             mm_projector_lr=2e-2, lora_towers=["language", "vision"], max_steps=10,
                             warmup_steps=1, lora_dropout=0.0), run)
        export = merge.export(run, run / "export")
        info = json.loads((run / "ocrsft_run.json").read_text())
        fam, model, processor = families.load(export)  # the folder alone, as infer will load it
        batch = merge.probe(info, Codec(fam, processor))
        reloaded = merge.logits(model.eval(), batch)
        from peft import PeftModel

        adapter = PeftModel.from_pretrained(families.load_model(Path(info["base_model"]), fam,
                                                                torch.float32), run / "final").eval()
        image = json.loads(Path(data).read_text().splitlines()[0])["image_info"][0]["image_url"]
        out[kind] = {
            "loss": [v for _, v in read_scalars(run / "tensorboard", "train/loss")],
            "merge_diff": json.loads((export / "ocrsft_bridge.json").read_text())["merge_max_abs_logit_diff"],
            "reload_diff": float((reloaded - merge.logits(adapter, batch)).abs().max()),
            "probe_has_image": any(k.startswith("pixel_values") for k in batch),
            "said": list(generate.predict(export, [{"prompt": "OCR:", "image": image}], max_new_tokens=4)),
            "changed": info["changed"], "family": info["family"],
        }
    return out


@pytest.fixture(scope="module")
def roundtrips(tiny_bridge, rec_data, shared_data, tmp_path_factory):
    return in_torch(_roundtrip_all, {k: str(v) for k, v in tiny_bridge.items()}, str(rec_data),
                    str(shared_data), str(tmp_path_factory.mktemp("families")))


@pytest.mark.parametrize("kind", NATIVE)
def test_family_trains_merges_reloads_and_generates(roundtrips, kind):
    r = roundtrips[kind]
    loss = r["loss"]
    assert len(loss) == 10 and sum(loss[-3:]) / 3 < sum(loss[:3]) / 3 - 0.05, loss
    assert r["probe_has_image"]                   # the parity probe goes through the image path
    assert r["merge_diff"] < 1e-5 and r["reload_diff"] < 1e-5
    assert len(r["said"]) == 1 and isinstance(r["said"][0], str)
    # LoRA deltas live in the adapter: only the whole-trained projector changes base weights.
    assert r["changed"] == ["projector"]


def test_family_registry_maps_lora_names_per_tower(tiny_bridge):
    r = in_torch(_targets, str(tiny_bridge["llava-chinese-clip"]), str(tiny_bridge["qwen2-vl"]))
    assert {n.rsplit(".", 1)[-1] for n in r["llava_vision"]} == {"q_proj", "k_proj", "v_proj", "out_proj",
                                                                 "fc1", "fc2"}
    assert {n.rsplit(".", 1)[-1] for n in r["llava_language"]} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                   "gate_proj", "up_proj", "down_proj"}
    assert all(n.startswith("model.vision_tower.") for n in r["llava_vision"])
    # Qwen2-VL: fused qkv in the ViT, and the merger (projector) inside it is never a LoRA target.
    assert {n.rsplit(".", 1)[-1] for n in r["qwen_vision"]} == {"qkv", "proj", "fc1", "fc2"}
    assert not any(".merger." in n for n in r["qwen_vision"])


def _targets(llava: str, qwen: str) -> dict:
    from engines.bridge import families
    from training.recipe.bridge import CANONICAL

    fam, model, _ = families.load(Path(llava))
    qfam, qmodel, _ = families.load(Path(qwen))
    names = list(CANONICAL)
    return {"llava_vision": families.lora_targets(model, fam, names, ("vision",)),
            "llava_language": families.lora_targets(model, fam, names, ("language",)),
            "qwen_vision": families.lora_targets(qmodel, qfam, names, ("vision",))}


def _remote_messages(root: str) -> list:
    import json

    from engines.bridge import families, tiny

    internvl2 = tiny.internvl2_original(Path(root) / "internvl2")
    ov15 = Path(root) / "ov15"
    ov15.mkdir()
    (ov15 / "config.json").write_text(json.dumps({
        "model_type": "llavaonevision1_5",
        "auto_map": {"AutoModelForImageTextToText": "modeling_llavaonevision1_5.LLaVAOneVision1_5"}}))
    said = []
    for folder in (internvl2, ov15):
        try:
            families.load(folder)
        except UserError as e:
            said.append(str(e))
    return said


@pytest.mark.slow
def test_remote_code_families_say_what_is_missing(tmp_path):
    internvl2, ov15 = in_torch(_remote_messages, str(tmp_path))
    assert "remote code only" in internvl2 and "modeling_internvl_chat.py" in internvl2
    assert "internvl2_convert" in internvl2
    assert "modeling_llavaonevision1_5.py" in ov15 and "auto_map" in ov15


def _convert_and_check(root: str) -> dict:
    import torch
    from safetensors.torch import load_file

    from engines.bridge import families, internvl2_convert, tiny

    src = tiny.internvl2_original(Path(root) / "src", seed=1)
    dst = internvl2_convert.convert(src, Path(root) / "dst")
    fam, model, _ = families.load(dst)
    orig = load_file(str(src / "model.safetensors"))
    sd = model.state_dict()
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    # InternLM2's own reading of wqkv: per KV head, G query heads then one key and one value.
    w = orig["language_model.model.layers.1.attention.wqkv.weight"]
    heads, kv, d = 4, 2, 16
    qkv = (x @ w.T).reshape(5, kv, heads // kv + 2, d)
    q_ref, k_ref, v_ref = qkv[:, :, :-2].reshape(5, -1), qkv[:, :, -2].reshape(5, -1), qkv[:, :, -1].reshape(5, -1)
    attn = model.model.language_model.layers[1].self_attn
    xv = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    vit_qkv = xv @ orig["vision_model.encoder.layers.0.attn.qkv.weight"].T + \
        orig["vision_model.encoder.layers.0.attn.qkv.bias"]
    va = model.model.vision_tower.encoder.layer[0].attention
    with torch.no_grad():
        return {
            "family": fam.name,
            "lm_qkv": max(float((attn.q_proj(x) - q_ref).abs().max()), float((attn.k_proj(x) - k_ref).abs().max()),
                          float((attn.v_proj(x) - v_ref).abs().max())),
            "vit_qkv": float((torch.cat([va.q_proj(xv), va.k_proj(xv), va.v_proj(xv)], 1) - vit_qkv).abs().max()),
            "mlp1": all(torch.equal(sd[f"model.multi_modal_projector.{n}.weight"], orig[f"mlp1.{i}.weight"])
                        for i, n in ((0, "layer_norm"), (1, "linear_1"), (3, "linear_2"))),
            # (the converter appends `<video>`, which InternVL's processor wants, as a new last row)
            "lm_head": torch.equal(sd["lm_head.weight"][:orig["language_model.output.weight"].shape[0]],
                                   orig["language_model.output.weight"]),
            "ls1": torch.equal(sd["model.vision_tower.encoder.layer.0.lambda_1"],
                               orig["vision_model.encoder.layers.0.ls1"]),
        }


@pytest.mark.slow
def test_internvl2_converter_splits_wqkv_and_maps_mlp1(tmp_path):
    r = in_torch(_convert_and_check, str(tmp_path))
    assert r["family"] == "internvl"
    assert r["lm_qkv"] < 1e-6 and r["vit_qkv"] < 1e-6
    assert r["mlp1"] and r["lm_head"] and r["ls1"]
