"""A newcomer's own data (issue 15): what `ocrsft convert` writes, every later command
accepts; totals that failed say so in the exit code; nothing hangs on samples too long.

The data is the real SROIE receipts in ../shared/data/sroie, converted as the README says.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from converters.run import convert
from converters.validate import validate
from samples.errors import UserError

REPO = Path(__file__).resolve().parent.parent


def ocrsft(*args, cwd=None, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run the CLI; `timeout` turns a run that never ends (the defect) into a failure."""
    return subprocess.run([sys.executable, "-m", "ocrsft", *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def receipts(shared_data, tmp_path_factory) -> Path:
    """SROIE converted with relative paths (the default) into a folder far from the images."""
    out = tmp_path_factory.mktemp("own") / "data" / "kie"
    convert("sroie", [shared_data / "sroie"], out / "train.jsonl", image_root=shared_data / "sroie",
            val_ratio=0.3, val_out=out / "val.jsonl")
    return out


# --- one image-path rule ----------------------------------------------------------------------

@pytest.mark.parametrize("absolute", [False, True])
def test_validate_accepts_what_convert_wrote(shared_data, tmp_path, absolute):
    out = tmp_path / "data" / "train.jsonl"
    c = convert("sroie", [shared_data / "sroie"], out, image_root=shared_data / "sroie",
                absolute_paths=absolute)
    assert c.written > 0
    ref = json.loads(out.read_text().splitlines()[0])["image_info"][0]["image_url"]
    assert ref.startswith("/") == absolute and (absolute or ref.startswith(".."))
    assert validate(out) == (c.written, [])
    # --image-root confines when given: the receipts do not lie under the output folder ...
    n, problems = validate(out, image_root=tmp_path)
    assert len(problems) == n and all("path_escape" in p for p in problems)
    # ... and accepts them under their own folder
    assert validate(out, image_root=shared_data / "sroie") == (c.written, [])


def test_infer_parity_and_plan_read_the_same_paths(receipts, tiny_model):
    from samples.sample import requests_from
    from training.plan import TokenCounter, profile_dataset

    reqs = list(requests_from(receipts / "val.jsonl"))
    assert reqs and all(r.error is None and Path(r.image).is_file() for r in reqs)
    prof = profile_dataset(receipts / "train.jsonl", TokenCounter(tiny_model), 4096)
    assert prof.n > 0 and prof.image_tokens > 0


def test_bridge_reads_converter_output_without_an_image_root(receipts):
    from engines.bridge.data import Tally, examples

    class Codec:  # records the image paths the bridge resolves; tokenising is tested elsewhere
        seen: list = []

        def encode(self, obj, base, image_root, max_len):
            from samples.sample import resolve_image

            self.seen += [resolve_image(im["image_url"], image_root, base=base)
                          for im in obj["image_info"]]
            return type("Ex", (), {"truncated": False})()

    tally = Tally()
    got = list(examples([receipts / "train.jsonl"], Codec(), 4096, tally))
    assert len(got) == tally.read == tally.used > 0 and not tally.rejects
    assert all(p.is_file() for p in Codec.seen)


# --- honest exit codes -----------------------------------------------------------------------

def test_convert_with_every_record_rejected_exits_non_zero(shared_data, tmp_path):
    r = ocrsft("convert", "sroie", shared_data / "sroie", "-o", tmp_path / "t.jsonl",
               "--image-root", tmp_path)  # a wrong root: every image is missing or outside
    assert r.returncode == 1, r.stdout + r.stderr
    assert "every one of the" in r.stderr and "--image-root" in r.stderr
    ok = ocrsft("convert", "sroie", shared_data / "sroie", "-o", tmp_path / "u.jsonl")
    assert ok.returncode == 0, ok.stderr


def test_output_files_honour_the_umask(shared_data, tmp_path):
    old = os.umask(0o022)
    try:
        convert("sroie", [shared_data / "sroie"], tmp_path / "t.jsonl",
                image_root=shared_data / "sroie")
    finally:
        os.umask(old)
    for name in ("t.jsonl", "t.stats.json", "t.rejects.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


# --- validate groups its errors --------------------------------------------------------------

def test_validate_groups_errors_by_reason(receipts, tmp_path):
    good = (receipts / "train.jsonl").read_text().splitlines()
    bad = []
    for i in range(30):  # thirty missing images bury ...
        row = json.loads(good[0])
        row["image_info"][0]["image_url"] = f"nope{i}.jpg"
        bad.append(json.dumps(row))
    row = json.loads(good[0])
    row["text_info"][1]["tag"] = "mask"  # ... the one real mistake
    data = receipts / "mixed.jsonl"
    data.write_text("\n".join(good + bad + [json.dumps(row)]) + "\n")
    r = ocrsft("validate", data)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "missing_image: 30 samples"
    assert lines[4] == "  ... and 27 more"
    assert lines[5] == "bad_tags: 1 sample"
    assert lines[-1] == f"validated {len(good) + 31}, invalid 31"
    assert len(lines) < 12


# --- one token estimate; no run that never ends -----------------------------------------------

def real_lengths(model: Path, data: Path) -> list[int]:
    """Each sample's sequence length through PaddleFormers' own SFT data path (processor,
    template and tokenizer of the model): what max_seq_len is compared with in training."""
    from inference.parity import TrainedPrompt

    n = sum(1 for _ in data.read_text().splitlines())
    trained = TrainedPrompt(model, data, n)
    out = []
    for line in data.read_text().splitlines():
        example = trained.reader._data_check(trained.convert(json.loads(line)))
        out.append(len(trained.dataset._process_sft_sequence(example, 1).token_ids))
    return out


def test_the_token_estimate_is_what_the_processor_builds(receipts, tiny_model):
    from training.plan import TokenCounter, profile_dataset

    real = real_lengths(tiny_model, receipts / "train.jsonl")
    est = profile_dataset(receipts / "train.jsonl", TokenCounter(tiny_model), 4096).lengths
    assert est == real, (est, real)


def test_convert_stats_use_the_same_estimate(receipts):
    from samples.image_tokens import sample_tokens
    from training.plan import TokenCounter, profile_dataset

    stats = json.loads((receipts / "train.stats.json").read_text())
    # no model given: bytes/3 text and PaddleOCR-VL-0.9B's pixels, for converter and plan alike
    prof = profile_dataset(receipts / "train.jsonl", TokenCounter(None), 1 << 20)
    val = profile_dataset(receipts / "val.jsonl", TokenCounter(None), 1 << 20)
    assert stats["tokens_per_sample"]["max"] == max(prof.longest, val.longest)
    assert stats["tokens_per_sample"]["mean"] == pytest.approx(
        (sum(prof.lengths) + sum(val.lengths)) / (prof.n + val.n), abs=0.01)
    # BOS + "OCR:" (4 bytes: 2) + "ab" (1) + "User: " (2) + "\nAssistant: " (4) + EOS + one
    # 28x28 block with its two image markers
    assert sample_tokens(["OCR:", "ab"], [(28, 28)], min_pixels=784, max_pixels=784) == 1 + 2 + 1 + 2 + 4 + 1 + 3


def train_cmd(model, receipts, out, *extra):
    return ("train", REPO / "configs/paddleocr_vl/cpu_tiny.yaml", f"model_name_or_path={model}",
            f"train_dataset_path={receipts / 'train.jsonl'}",
            f"eval_dataset_path={receipts / 'val.jsonl'}", f"output_dir={out}", *extra)


def test_train_stops_before_launch_when_no_sample_fits(receipts, tiny_model, tmp_path):
    out = tmp_path / "run"
    r = ocrsft(*train_cmd(tiny_model, receipts, out, "max_seq_len=32"), timeout=300)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "max_seq_len" in err[0], err
    n = len((receipts / "train.jsonl").read_text().splitlines())
    assert f"{n} of {n} samples in train.jsonl are longer than max_seq_len 32" in err[0]
    assert "longest" in err[0] and "fits them all" in err[0]
    assert not (out / "tensorboard").exists()  # stopped before the trainer started
    plan = ocrsft("plan", *train_cmd(tiny_model, receipts, out, "max_seq_len=32")[1:], "--no-write")
    assert plan.returncode == 0 and "plan: WARNING" in plan.stdout and "refuses" in plan.stdout


def test_most_not_fitting_needs_an_explicit_key(receipts, tiny_model, tmp_path):
    from training.plan import TokenCounter, length_problem, profile_dataset

    data = receipts / "train.jsonl"
    lengths = sorted(profile_dataset(data, TokenCounter(tiny_model), 4096).lengths)
    limit = lengths[0]  # only the shortest fits
    prof = profile_dataset(data, TokenCounter(tiny_model), limit)
    text, fatal = length_problem(prof, data, limit)
    assert fatal and "allow_long_samples" in text
    assert length_problem(prof, data, limit, allow_long=True)[1] is False
    r = ocrsft("plan", *train_cmd(tiny_model, receipts, tmp_path / "r", f"max_seq_len={limit}",
                                  "allow_long_samples=true")[1:], "--no-write")
    assert r.returncode == 0 and "plan: WARNING" in r.stdout and "refuses" not in r.stdout


# --- infer: every row an error is a failure; a rerun retries error rows ----------------------

def test_infer_all_errors_exits_1_and_a_rerun_retries_them(shared_data, tmp_path, capsys):
    from ocrsft.cli import main
    from samples.sample import make_sample
    from tests.test_infer_server import MockServer

    root = shared_data / "paddleocr_rec" / "train"
    names = sorted(p.stem for p in root.glob("*.png"))[:2]

    def write(folder):
        rows = [{"id": n, **make_sample([str(folder / f"{n}.png")], [("OCR:", n)])} for n in names]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    data, out = tmp_path / "val.jsonl", tmp_path / "pred.jsonl"
    server = MockServer()
    try:
        args = ["infer", "--backend", "vllm-server", "--server-url", server.url,
                "--data", str(data), "-o", str(out)]
        write(tmp_path / "moved")  # every image missing: every row an error
        assert main(args) == 1
        said = capsys.readouterr()
        assert "infer: 0 predicted, 2 errors" in said.out and "every sample failed" in said.err
        assert main(args + ["--keep-errors"]) == 0  # nothing new to do: not a failure
        assert "0 predicted, 0 errors, 2 already done" in capsys.readouterr().out
        write(root)  # fixed: the rerun predicts the error rows again, once
        assert main(args) == 0
        assert "infer: 2 predicted, 0 errors, 0 already done" in capsys.readouterr().out
    finally:
        server.close()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == names and all(r["error"] is None for r in rows)


def test_default_max_new_tokens_covers_the_longest_reference(receipts):
    from inference.predict import DEFAULT_MAX_NEW_TOKENS, covering_max_new_tokens

    refs = [json.loads(x)["text_info"][1]["text"] for x in (receipts / "val.jsonl").read_text().splitlines()]
    budget = covering_max_new_tokens(receipts / "val.jsonl")
    assert budget == max(DEFAULT_MAX_NEW_TOKENS, max(len(r.encode()) for r in refs) + 1)
    long = receipts / "long.jsonl"
    row = json.loads((receipts / "val.jsonl").read_text().splitlines()[0])
    row["text_info"][1]["text"] = json.dumps({"address": "x" * 700})
    long.write_text(json.dumps(row) + "\n")
    assert covering_max_new_tokens(long) == len(row["text_info"][1]["text"]) + 1 > DEFAULT_MAX_NEW_TOKENS


# --- KIE: a JSON answer cut off at max_new_tokens is scored on its finished fields -------------

def test_truncated_json_is_scored_field_by_field(receipts):
    from evaluation.metrics.kie import aggregate, score

    ref = json.loads((receipts / "train.jsonl").read_text().splitlines()[0])["text_info"][1]["text"]
    fields = json.loads(ref)
    missing_brace = score(ref[:-1], ref)
    assert missing_brace["truncated"] == 1.0 and missing_brace["anls"] == 1.0
    assert missing_brace["field_tp"] == len(fields)
    cut = ref[:ref.index('"address"') + len('"address": "NO.5')]  # cut inside the third value
    s = score(cut, ref)
    assert s["parsed"] == 1.0 and s["truncated"] == 1.0
    assert s["anls"] == pytest.approx(2 / len(fields)) and s["field_tp"] == 2
    whole = score(ref, ref)
    assert whole["truncated"] == 0.0 and whole["exact"] == 1.0
    assert aggregate([s, whole])["truncated_rate"] == 0.5


# --- a resumed run leaves no duplicate steps in TensorBoard ----------------------------------

def test_purge_after_leaves_each_step_once(tmp_path):
    import time

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboardX import SummaryWriter

    from training.monitor import purge_after, read_scalars

    logdir = tmp_path / "tb"
    first = SummaryWriter(str(logdir))  # the killed run: steps 1..10, checkpoint at 6
    for step in range(1, 11):
        first.add_scalar("train/loss", 10.0 - step, step)
    first.close()
    assert purge_after(logdir, 6) == 4
    time.sleep(1.1)  # tensorboardX names files by the second
    second = SummaryWriter(str(logdir))  # the resumed run logs 7..10 again
    for step in range(7, 11):
        second.add_scalar("train/loss", 100.0 + step, step)
    second.close()
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert len(files) == 2
    steps = []
    for f in files:  # every point in the files themselves, as any TensorBoard loader sees them
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0}, purge_orphaned_data=False)
        acc.Reload()
        steps += [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, 11))
    assert [v for _, v in read_scalars(logdir, "train/loss")][-1] == 110.0


# --- the README's examples, verbatim, on what convert wrote ----------------------------------

def readme_block(marker: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows under it) for the fenced block after
    `marker` (a `<!-- ... -->` line, or the block's first command) in README.md."""
    text = (REPO / "README.md").read_text()
    at = text.index(marker)
    fence = text.index("```", at) if marker.startswith("<!--") else text.rindex("```", 0, at)
    body = text[fence + 3:]
    body = body[body.index("\n") + 1:body.index("```")]
    steps: list[tuple[str, list[str]]] = []
    pending = ""
    for line in body.splitlines():
        if pending:  # a continued command
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:].strip()
        elif steps:
            steps[-1][1].append(line)
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending:
            steps.append((pending, []))
            pending = ""
    return steps


CHECKED = ("converted ", "validated ", "validation split:", "infer: ", "rejected by reason:")


def run_readme(marker: str, clone: Path) -> list[str]:
    """Run a README block in `clone` (a fresh checkout's layout: configs/ inside it,
    ../shared beside it); every command must exit 0 and print the lines shown."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    outputs = []
    for cmd, shown in readme_block(marker):
        assert cmd.startswith("ocrsft "), cmd
        r = subprocess.run(cmd, shell=True, cwd=clone, capture_output=True, text=True, env=env)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        for line in shown:
            if line.startswith(CHECKED):
                assert line in r.stdout.splitlines(), (cmd, line, r.stdout[-2000:])
        outputs.append(r.stdout)
    return outputs


@pytest.fixture
def clone(shared_data, tmp_path) -> Path:
    root = tmp_path / "clone"
    root.mkdir()
    (root / "configs").symlink_to(REPO / "configs")
    (tmp_path / "shared").symlink_to(shared_data.parent)
    return root


@pytest.mark.parametrize("family", ["table", "formula", "det"])
def test_readme_family_examples_convert_validate_and_plan(family, clone, tiny_model):
    (clone / "models").mkdir()
    (clone / "models" / "tiny").symlink_to(tiny_model)
    outs = run_readme(f"<!-- own-data: {family} -->", clone)
    assert "validated" in outs[1] and "invalid 0" in outs[1]
    assert "plan:" in outs[2] and "WARNING" not in outs[2]  # the CPU recipe fits the samples


@pytest.mark.slow
def test_readme_bridge_example_runs_verbatim(clone):
    outs = run_readme("$ ocrsft tiny-model models/llava-chinese-clip", clone)
    assert "infer: 3 predicted, 0 errors" in outs[-2]


@pytest.mark.slow
def test_receipts_end_to_end_from_raw_labels_to_compare(clone):
    """Done-when of issue 15: convert -> validate -> plan -> train (CPU KIE recipe) -> export
    -> infer -> eval -> compare, no path flag, every step exits 0, compare shows a change."""
    run_readme("<!-- own-data: kie -->", clone)
    result = json.loads((clone / "runs/kie_cpu/compare/compare.json").read_text())
    base, sft = result["base"]["kie"], result["sft"]["kie"]
    assert base["samples"] == sft["samples"] == 4 and not base["errors"] and not sft["errors"]
    changed = {k: (base[k], sft[k]) for k in base if k not in ("samples", "errors") and base[k] != sft[k]}
    assert changed, result


# --- quiet by default --------------------------------------------------------------------------

def test_quiet_keeps_the_training_log_and_drops_per_step_noise():
    import logging

    from ocrsft.quiet import DropNoise

    def kept(level, msg):
        return DropNoise().filter(logging.LogRecord("PaddleFormers", level, __file__, 1, msg, None, None))

    assert kept(logging.INFO, "{'loss': 2.1, 'learning_rate': 0.001, 'global_step': 10}")
    assert kept(logging.ERROR, "[DataLoad global_step: 3] failed")
    assert not kept(logging.INFO, "[DataLoad global_step: 1329] data_load_time: 0.13 ms "
                                  "(accumulated over 1 micro-batches)")
    assert not kept(logging.DEBUG, "padding to 48") and not kept(logging.WARNING, "deprecated")


def test_third_party_noise_is_hidden_unless_verbose(tmp_path):
    from ocrsft.quiet import ENV

    # as a user's shell has it (an in-process `ocrsft` call in this session may have set these)
    env = {k: v for k, v in os.environ.items() if k not in ENV and k != "OCRSFT_VERBOSE"}
    quiet = ocrsft("tiny-model", tmp_path / "a", env=env)  # imports paddle and paddleformers
    assert quiet.returncode == 0, quiet.stderr
    said = quiet.stdout + quiet.stderr
    assert "PyTorch was not found" not in said and "Warning" not in said and "DEBUG" not in said
    assert "tiny-model: wrote" in quiet.stdout
    loud = ocrsft("--verbose", "tiny-model", tmp_path / "b", env=env)
    assert loud.returncode == 0 and "PyTorch was not found" in loud.stdout + loud.stderr


# --- GPU recipes on CPU -----------------------------------------------------------------------

def test_cpu_synchronize_is_a_no_op_not_a_type_error():
    import paddle

    from engines.paddleformers import compat

    compat.apply()
    paddle.device.set_device("cpu")
    assert paddle.device.synchronize() is None  # upstream: TypeError: device should be gpu, xpu
    assert compat.cpu_launch_settings()["fp16_opt_level"] == "O1"


@pytest.mark.slow
def test_the_gpu_kie_recipe_trains_on_cpu_with_cpu_settings(receipts, tiny_model, tmp_path):
    r = ocrsft("train", REPO / "configs/paddleocr_vl/kie_full_16k.yaml", f"model_name_or_path={tiny_model}",
               f"train_dataset_path={receipts / 'train.jsonl'}", f"eval_dataset_path={receipts / 'val.jsonl'}",
               f"output_dir={tmp_path / 'run'}", "max_steps=1", "gradient_accumulation_steps=2",
               "per_device_train_batch_size=1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "train: done" in r.stdout
