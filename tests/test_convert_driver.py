"""The convert driver: the real client (PaddleFormers' reader), fuzzing, kill-and-rerun,
image copy/resize, options, and the validate subcommand."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters.registry import FORMATS, Record, get_converter
from converters.run import Options, convert, process, stats_path
from samples.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def real_inputs(d: Path) -> dict[str, tuple[list[Path], Path, dict]]:
    """format -> (inputs, image root, options) on ../shared/data."""
    return {
        "paddleocr-rec": ([d / "paddleocr_rec/rec_gt_test.txt"], d / "paddleocr_rec", {}),
        "paddleocr-det": ([d / "paddleocr_det/test_icdar2015_label.txt"], d / "paddleocr_det", {}),
        "messages": ([d / "sharegpt_messages/mllm_demo.json"], d / "sharegpt_messages", {}),
        "sroie": ([d / "sroie"], d / "sroie", {"with_ocr": True}),
        "xfund": ([d / "xfund_zh/val.json"], d / "xfund_zh/image", {}),
        "im2latex": ([d / "im2latex/test20.lst"], d / "im2latex", {}),
        "chart": ([d / "chart_docling/barchart.gt.md"], d / "chart_docling", {}),
    }


def paddleformers_read(path: Path, file_type: str = "erniekit") -> list[dict]:
    from paddleformers.datasets.reader.file_reader import FileReader

    return [x for x in iter(FileReader(str(path), file_type))]


def test_paddleformers_reader_accepts_every_output(shared_data, tmp_path):
    """The trainer's own reader turns each converted line into messages, dropping none."""
    for fmt, (inputs, root, opts) in real_inputs(shared_data).items():
        out = tmp_path / fmt / "train.jsonl"
        c = convert(fmt, inputs, out, image_root=root, **opts)
        assert c.written > 0 and c.reconciles(), fmt
        rows = [json.loads(l) for l in out.read_text().splitlines()]
        read = paddleformers_read(out)
        assert len(read) == len(rows) == c.written, fmt
        for row, got in zip(rows, read):
            assert got["messages"][0]["role"] == "user" and got["messages"][-1]["role"] == "assistant"
            assert got["messages"][-1]["content"] == row["text_info"][-1]["text"]
            assert len(got["images"]) == len(row["image_info"])
            assert all(Path(p).is_file() for p in got["images"]), fmt  # paths resolve from the file


def test_emit_messages_is_read_by_paddleformers_messages_type(shared_data, tmp_path):
    src = shared_data / "sharegpt_messages"
    out = tmp_path / "m.jsonl"
    c = convert("messages", [src / "mllm_demo.json"], out, emit_style="messages")
    read = paddleformers_read(out, "messages")
    assert len(read) == c.written == 6
    original = json.loads((src / "mllm_demo.json").read_text())
    for got, item in zip(read, original):
        assert [m["content"].replace("<image>", "") for m in got["messages"]] == \
            [m["content"].replace("<image>", "") for m in item["messages"]]
        assert [Path(p).resolve() for p in got["images"]] == \
            [(src / p).resolve() for p in item["images"]]


def fuzz_options(fmt: str, root: Path) -> tuple:
    conv = get_converter(fmt)(root)
    return conv, Options(root, root)


line_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=20)
keyed = st.fixed_dictionaries({}, optional={
    "messages": json_values, "images": json_values, "conversations": json_values,
    "image": json_values, "text_info": json_values, "image_info": json_values})
def importable(fmt: str) -> bool:
    try:
        get_converter(fmt)
        return True
    except KeyError:  # pubtabnet/html-table before formats/otsl.py exists
        return False


LINE_FORMATS = [f for f in FORMATS if f not in ("sroie", "chart") and importable(f)]


@pytest.mark.parametrize("fmt", LINE_FORMATS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(line_text, keyed.map(json.dumps), json_values.map(json.dumps),
                     st.tuples(st.sampled_from(["test/word_1.png", "../x.png", "/etc/passwd", ""]),
                               line_text | json_values.map(json.dumps)).map("\t".join)))
def test_fuzz_line_formats_reject_never_crash(fmt, raw, shared_data):
    root = shared_data / "paddleocr_rec"
    conv, opts = fuzz_options(fmt, root)
    src = root / "rec_gt_test.txt" if fmt != "im2latex" else shared_data / "im2latex/test20.lst"
    r = process(conv, opts, Record(str(src), 1, raw))
    assert (r.out_line is None) != (r.reason is None)
    assert r.reason is None or not r.reason.startswith("bad_record"), r.reason  # no unexpected crash


@pytest.mark.parametrize("fmt,name", [("chart", "t.csv"), ("chart", "t.json"), ("chart", "t.md"),
                                      ("sroie", "box")])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | line_text.map(str.encode) | json_values.map(
    lambda v: json.dumps(v).encode()))
def test_fuzz_file_formats_reject_never_crash(fmt, name, content, tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("fz")
    if fmt == "sroie":
        for sub in ("box", "key", "img"):
            (d / sub).mkdir()
        (d / "box/1.csv").write_bytes(content)
        (d / "key/1.json").write_bytes(content)
        Image.new("RGB", (40, 40), "white").save(d / "img/1.jpg")
        raw, conv = str(d / "key/1.json"), get_converter("sroie")(d, with_ocr=True)
    else:
        (d / name).write_bytes(content)
        Image.new("RGB", (40, 40), "white").save(d / "t.png")
        raw, conv = str(d / name), get_converter("chart")(d)
    r = process(conv, Options(d, d), Record(raw, 1, raw))
    assert (r.out_line is None) != (r.reason is None)
    assert r.reason is None or not r.reason.startswith("bad_record"), r.reason


def big_rec_labels(tmp_path: Path, shared_data: Path, n: int) -> Path:
    """n distinct lines over the real crops (text differs, so no duplicates)."""
    import shutil

    shutil.copytree(shared_data / "paddleocr_rec/test", tmp_path / "test")
    names = sorted(p.name for p in (tmp_path / "test").iterdir())
    lab = tmp_path / "labels.txt"
    lab.write_text("".join(f"test/{names[i % len(names)]}\tword {i}\n" for i in range(n)))
    return lab


@pytest.mark.slow
def test_kill_and_rerun_gives_identical_output(shared_data, tmp_path):
    lab = big_rec_labels(tmp_path, shared_data, 20000)
    cmd = [sys.executable, "-m", "ocrsft", "convert", "paddleocr-rec", str(lab),
           "--val-ratio", "0.1"]
    ref = subprocess.run(cmd + ["-o", str(tmp_path / "ref.jsonl")], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert ref.stdout.strip().endswith("converted 20000, rejected 0")
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(cmd + ["-o", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once it has written part of the output
        parts = list(tmp_path.glob(".out.jsonl.*.part"))
        if parts and parts[0].stat().st_size > 50_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "conversion finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and not (tmp_path / "out.val.jsonl").exists()
    assert list(tmp_path.glob(".out.jsonl.*.part"))  # the killed run's leftover...
    subprocess.run(cmd + ["-o", str(out)], cwd=ROOT, check=True, capture_output=True)
    assert not list(tmp_path.glob(".*.part"))  # ...is swept by the rerun
    for a, b in [("ref.jsonl", "out.jsonl"), ("ref.val.jsonl", "out.val.jsonl"),
                 ("ref.rejects.jsonl", "out.rejects.jsonl")]:
        assert (tmp_path / a).read_bytes() == (tmp_path / b).read_bytes(), a
    assert json.loads(stats_path(out).read_text())["written"] == \
        json.loads(stats_path(tmp_path / "ref.jsonl").read_text())["written"]


def test_max_side_copies_and_shrinks_images(shared_data, tmp_path):
    from PIL import Image

    src = shared_data / "paddleocr_det"
    out = tmp_path / "o" / "det.jsonl"
    c = convert("paddleocr-det", [src / "test_icdar2015_label.txt"], out, max_side=640)
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == c.written == 9
    for r in rows:
        p = (out.parent / r["image_info"][0]["image_url"]).resolve()
        assert p.is_relative_to(out.parent / "det_images")
        assert Image.open(p).size == (640, 360)  # 1280x720 halved, aspect kept
    stats = json.loads(stats_path(out).read_text())
    assert stats["image_max_side_px"] == {"<=1024": 9}  # stats describe what the model sees
    # boxes are 0-1000 relative, so resizing does not change the answers
    ref = tmp_path / "ref.jsonl"
    convert("paddleocr-det", [src / "test_icdar2015_label.txt"], ref)
    assert [r["text_info"] for r in rows] == \
        [json.loads(l)["text_info"] for l in ref.read_text().splitlines()]


def test_format_options_are_checked(shared_data, tmp_path):
    src = shared_data / "paddleocr_det/test_icdar2015_label.txt"
    with pytest.raises(UserError, match="no option colour"):
        convert("paddleocr-det", [src], tmp_path / "o.jsonl", colour="red")
    with pytest.raises(UserError, match="style"):
        convert("paddleocr-det", [src], tmp_path / "o.jsonl", style="yolo")
    res = subprocess.run([sys.executable, "-m", "ocrsft", "convert", "sroie", str(src.parent),
                          "-o", str(tmp_path / "x.jsonl"), "-O", "with_ocr=maybe"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "with_ocr" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_passes_format_options(shared_data, tmp_path):
    src = shared_data / "paddleocr_det"
    res = subprocess.run([sys.executable, "-m", "ocrsft", "convert", "paddleocr-det",
                          str(src / "test_icdar2015_label.txt"), "-o", str(tmp_path / "d.jsonl"),
                          "-O", "style=internvl", "-O", "illegible=keep"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "converted 10, rejected 0"
    first = json.loads((tmp_path / "d.jsonl").read_text().splitlines()[0])
    assert first["text_info"][1]["text"].startswith("<ref>###</ref><box>[[")


def test_dedup_keeps_samples_whose_digests_share_a_prefix():
    """Dedup compares whole digests: keys equal in their first 8 bytes are distinct samples."""
    from converters.run import SeenSet

    seen = SeenSet(capacity=4)
    a, b = bytes(8) + b"\x01\x00\x00\x00", bytes(8) + b"\x02\x00\x00\x00"
    assert seen.add(a) and seen.add(b)
    assert not seen.add(a) and not seen.add(b)
    many = [i.to_bytes(8, "little") + bytes([i % 7, 1, 2, 3]) for i in range(1000)]
    assert all(seen.add(k) for k in many)  # grows past its capacity many times
    assert not any(seen.add(k) for k in many + [a, b]) and seen.n == 1002
