"""The guard against forgetting: a recipe mixes domain and general data by ratio, the plan
counts the mixed D as PaddleFormers' mixer builds it (from the converters' stats), and
`ocrsft compare` reports the base -> fine-tuned change on a general set beside the domain's."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from converters.run import convert
from ocrsft.cli import main
from samples.errors import UserError
from training.plan import mixed_samples, plan_for


@pytest.fixture(scope="module")
def two_sets(shared_data, tmp_path_factory):
    """The real ICDAR2015 word crops: the 21 test lines as 'domain', the train lines as 'general'."""
    out = tmp_path_factory.mktemp("mix")
    src = shared_data / "paddleocr_rec"
    domain = convert("paddleocr-rec", [src / "rec_gt_test.txt"], out / "domain.jsonl", image_root=src)
    general = convert("paddleocr-rec", [src / "rec_gt_train.txt"], out / "general.jsonl", image_root=src)
    return out / "domain.jsonl", domain.written, out / "general.jsonl", general.written


def interleaved_length(sizes, probs, strategy, seed=42) -> int:
    """PaddleFormers' own InterLeaveDataset over lists of these sizes."""
    from paddleformers.datasets.reader.mix_datasets import InterLeaveDataset

    group = SimpleNamespace(_task_group=[{"dataset": list(range(n)), "prob": p} for n, p in zip(sizes, probs)])
    return len(InterLeaveDataset(group, mix_strategy=strategy, random_seed=seed, random_shuffle=False,
                                 num_samples_each_epoch=0))


def test_plan_counts_the_mixed_d_from_the_converter_stats(two_sets):
    domain, nd, general, ng = two_sets
    assert (domain.with_suffix(".stats.json")).is_file()
    cfg = {"train_dataset_path": f"{domain},{general}", "train_dataset_prob": "0.8,0.2",
           "mix_strategy": "interleave_under", "per_device_train_batch_size": 1,
           "learning_rate": 1e-4, "num_train_epochs": 1}
    plan = plan_for(cfg)
    # Drawn 80/20 until the 21-sample domain set is used up: ~21 / 0.8 samples an epoch.
    assert plan.D == round(nd / 0.8)
    assert "D from domain.stats.json, general.stats.json" in plan.notes[0]
    assert plan.notes[1] == (f"mix interleave_under: D ~{plan.D} = domain.jsonl {round(0.8 * plan.D)} "
                             f"(80%, {round(0.8 * plan.D) / nd:.2f} passes over its {nd}) + general.jsonl "
                             f"{round(0.2 * plan.D)} (20%, {round(0.2 * plan.D) / ng:.2f} passes over its {ng})")


@pytest.mark.parametrize("strategy,sizes,probs", [("interleave_under", (400, 5000), (0.8, 0.2)),
                                                  ("interleave_over", (400, 300), (0.8, 0.2))])
def test_the_estimate_matches_paddleformers_mixer(strategy, sizes, probs):
    paths = [SimpleNamespace(name="a.jsonl"), SimpleNamespace(name="b.jsonl")]
    D, _ = mixed_samples({"train_dataset_prob": ",".join(map(str, probs)), "mix_strategy": strategy},
                         paths, list(sizes))
    assert D == {"interleave_under": 500, "interleave_over": 1500}[strategy]
    actual = [interleaved_length(sizes, probs, strategy, seed) for seed in (1, 2, 3)]
    assert all(abs(a - D) / D < 0.1 for a in actual), actual


def test_concat_ignores_weights_and_says_so(two_sets):
    domain, nd, general, ng = two_sets
    D, note = mixed_samples({"train_dataset_prob": "0.8,0.2", "mix_strategy": "concat"},
                            [domain, general], [nd, ng])
    assert D == nd + ng and "IGNORED" in note
    D, note = mixed_samples({"train_dataset_prob": "0.5,0.5", "mix_strategy": "random",
                             "num_samples_each_epoch": 1000}, [domain, general], [nd, ng])
    assert D == 1000 and "domain.jsonl 500 (50%" in note
    with pytest.raises(UserError, match="train_dataset_prob: needs 2 non-negative weights"):
        mixed_samples({"train_dataset_prob": "1.0", "mix_strategy": "random"}, [domain, general], [nd, ng])
    with pytest.raises(UserError, match="mix_strategy: 'mixed' is not one of"):
        mixed_samples({"mix_strategy": "mixed"}, [domain, general], [nd, ng])


# --- compare with a general held-out set ---------------------------------------------------

def predictions(shared_data, tmp_path, name, label_file, damage):
    """`ocrsft infer`-shaped rows over real labels; `damage(i, ref)` is the model's answer."""
    rows = []
    src = shared_data / "paddleocr_rec"
    for i, line in enumerate((src / label_file).read_text().splitlines()):
        path, ref = line.split("\t", 1)
        rows.append({"id": path, "task": "ocr", "prompt": "OCR:", "image": str(src / path),
                     "reference": ref, "prediction": damage(i, ref), "error": None})
    out = tmp_path / name
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return out


def test_compare_says_plainly_when_the_model_got_worse_outside_the_domain(shared_data, tmp_path, capsys):
    keep, cut = (lambda i, r: r), (lambda i, r: r[:-1] if i % 2 else r)
    base = predictions(shared_data, tmp_path, "base.jsonl", "rec_gt_test.txt", cut)
    sft = predictions(shared_data, tmp_path, "sft.jsonl", "rec_gt_test.txt", keep)        # domain: fixed
    gbase = predictions(shared_data, tmp_path, "gbase.jsonl", "rec_gt_train.txt", keep)
    gsft = predictions(shared_data, tmp_path, "gsft.jsonl", "rec_gt_train.txt", cut)      # general: broken
    rc = main(["compare", str(base), str(sft), "--general-base", str(gbase), "--general-sft", str(gsft),
               "-o", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert rc == 0
    said = [line for line in out.splitlines() if line.startswith("compare: ")]
    assert said[0].startswith("compare: domain  ocr cer ") and "(better by " in said[0]
    assert said[1].startswith("compare: general ocr cer 0.000 -> ") and "(WORSE by " in said[1]
    assert said[2].startswith("compare: WORSE OUTSIDE THE DOMAIN: ocr cer 0.000 -> ")
    v = json.loads((tmp_path / "cmp" / "forgetting.json").read_text())
    assert v["worse_outside_domain"] is True and v["domain"]["ocr"]["change"] == "better"
    assert "**WORSE**" in (tmp_path / "cmp" / "report.md").read_text()

    rc = main(["compare", str(base), str(sft), "--general-base", str(gbase), "--general-sft", str(gbase),
               "-o", str(tmp_path / "cmp2")])
    assert rc == 0
    assert "compare: no loss outside the domain: ocr cer 0.000 -> 0.000 (unchanged)" in capsys.readouterr().out
    assert main(["compare", str(base), str(sft), "--general-base", str(gbase), "-o", str(tmp_path / "c3")]) == 2
    assert not (tmp_path / "c3").exists()  # refused before anything is written
    assert "needs both --general-base and --general-sft" in capsys.readouterr().err
