"""`ocrsft export RUN` for a bridge run: one self-contained model folder.

A LoRA run is merged into its base, which is reloaded in full precision even
when training was quantised (merging into 4-bit weights would round the
deltas away). Before saving, the adapter model and the merged model score the
same probe (the first usable training sample, image included) and the largest
logit difference is written into the folder's `ocrsft_bridge.json`, so every
export carries the proof that the merge kept the model.
"""
from __future__ import annotations

from pathlib import Path

from engines.bridge import families
from engines.bridge.data import Codec, Tally, collate, examples
from engines.bridge.generate import META
from engines.bridge.runtime import isolated
from samples.errors import UserError
from samples.jsonl import write_json
from training.recipe import dataset_paths
from training.run_folder import MARKER, read_marker


def probe(info: dict, codec: Codec) -> dict:
    """The first usable training sample as a batch of one; a text prompt if none is readable."""
    try:
        paths = [p for p in dataset_paths(info.get("train_dataset_path") or "") if p.is_file()]
        ex = next(examples(paths, codec, info.get("max_seq_len", 2048), Tally(), info.get("image_root")))
    except (StopIteration, UserError):
        ids = codec.tokenizer(codec.prompt_text("OCR:", 0, True), add_special_tokens=False)["input_ids"]
        return {"input_ids": __import__("torch").tensor([ids])}
    batch = collate([ex], codec.tokenizer.pad_token_id or 0)
    batch.pop("labels")
    return batch


def logits(model, batch: dict):
    import torch

    with torch.no_grad():
        return model(**batch).logits.float()


@isolated
def export(run_dir: Path, out_dir: Path) -> Path:
    import torch

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = read_marker(run_dir)
    if info is None:
        raise UserError(str(run_dir), f"is not a finished torch-engine run (no {MARKER})")
    fam = families.FAMILIES[info["family"]]
    final = run_dir / info["final"]
    processor = families.load_processor(final, fam)
    codec = Codec(fam, processor, info.get("template"), info.get("system_prompt"),
                  info.get("max_image_size"))
    if info["fine_tuning"] == "lora":
        from peft import PeftModel

        base = families.load_model(Path(info["base_model"]), fam, torch.float32)
        model = PeftModel.from_pretrained(base, final).eval()
        batch = probe(info, codec)
        adapter_logits = logits(model, batch)
        model = model.merge_and_unload()
        diff = float((logits(model, batch) - adapter_logits).abs().max())
    else:
        model, diff = families.load_model(final, fam, torch.float32).eval(), 0.0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_json(out_dir / META, {
        "family": fam.name, "template": codec.template.name, "system_prompt": info.get("system_prompt"),
        "max_image_size": info.get("max_image_size"), "source_run": str(run_dir.resolve()),
        "base_model": info["base_model"], "fine_tuning": info["fine_tuning"],
        "merge_max_abs_logit_diff": diff})
    print(f"export: {fam.name} {info['fine_tuning']} run merged -> {out_dir} "
          f"(adapter vs merged logits: max |diff| {diff:.2e})", flush=True)
    return out_dir
