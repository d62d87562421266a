"""`messages` and `llava`: LLaMA-Factory's demo data and the InternVL documentation's records."""
from __future__ import annotations

import json
import shutil

from converters.messages import to_messages
from converters.run import convert


def load(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_messages_demo_images_follow_their_tags(shared_data, tmp_path):
    src = shared_data / "sharegpt_messages"
    c = convert("messages", [src / "mllm_demo.json"], tmp_path / "m.jsonl", absolute_paths=True)
    assert (c.read, c.written) == (6, 6)
    rows = load(tmp_path / "m.jsonl")
    items = json.loads((src / "mllm_demo.json").read_text())
    for row, item in zip(rows, items):
        # the n-th <image> tag's turn is where the n-th image attaches
        tag_turns = [i for i, m in enumerate(item["messages"]) for _ in range(m["content"].count("<image>"))]
        assert [im["matched_text_index"] for im in row["image_info"]] == tag_turns
        assert [im["image_url"] for im in row["image_info"]] == [str((src / p).resolve()) for p in item["images"]]
        assert [t["text"] for t in row["text_info"]] == [m["content"].replace("<image>", "").strip()
                                                          if m["role"] == "user" else m["content"]
                                                          for m in item["messages"]]
    assert rows[0]["image_info"][1]["matched_text_index"] == 2  # "What are they doing?<image>"


def test_typed_content_jsonl(shared_data, tmp_path):
    """v1_multimodal_demo.jsonl names images as data/mllm_demo_data/N.jpg (LLaMA-Factory's root)."""
    src = shared_data / "sharegpt_messages"
    shutil.copytree(src / "mllm_demo_data", tmp_path / "data" / "mllm_demo_data")
    c = convert("messages", [src / "v1_multimodal_demo.jsonl"], tmp_path / "o" / "v.jsonl",
                image_root=tmp_path)
    n = sum(1 for l in (src / "v1_multimodal_demo.jsonl").read_text().splitlines() if l.strip())
    # the file holds the 6 demo conversations several times over: dedup keeps one of each
    assert (c.read, c.written, c.rejected, dict(c.reasons)) == (n, 6, n - 6, {"duplicate": n - 6})
    plain = convert("messages", [src / "mllm_demo.json"], tmp_path / "o" / "p.jsonl")
    assert (plain.written, plain.rejected) == (6, 0)
    # the typed and the plain demo are the same conversations with the same images
    v, p = load(tmp_path / "o" / "v.jsonl"), load(tmp_path / "o" / "p.jsonl")
    assert [r["text_info"] for r in v] == [r["text_info"] for r in p]
    assert [[(i["matched_text_index"], i["image_url"].rsplit("/", 1)[1]) for i in r["image_info"]] for r in v] == \
        [[(i["matched_text_index"], i["image_url"].rsplit("/", 1)[1]) for i in r["image_info"]] for r in p]


def test_both_directions_round_trip(shared_data, tmp_path):
    src = shared_data / "sharegpt_messages"
    convert("messages", [src / "mllm_demo.json"], tmp_path / "e.jsonl")
    back = tmp_path / "back.jsonl"
    back.write_text("".join(json.dumps(to_messages(r)) + "\n" for r in load(tmp_path / "e.jsonl")))
    convert("messages", [back], tmp_path / "again.jsonl", image_root=shared_data)
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "e.jsonl").read_text()


def test_mismatched_tags_and_roles_are_rejects(shared_data, tmp_path):
    src = shared_data / "sharegpt_messages"
    bad = [
        {"messages": [{"role": "user", "content": "<image><image>hi"}, {"role": "assistant", "content": "x"}],
         "images": ["mllm_demo_data/1.jpg"]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}]},
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<image>x"}],
         "images": ["mllm_demo_data/1.jpg"]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": "<image>hi"}, {"role": "assistant", "content": "x"}],
         "images": ["../../../etc/passwd"]},
    ]
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(b) + "\n" for b in bad) + "{broken\n")
    c = convert("messages", [f], tmp_path / "o.jsonl", image_root=src)
    assert (c.read, c.rejected) == (7, 7)
    reasons = [r["reason"].split(":")[0] for r in load(tmp_path / "o.rejects.jsonl")]
    assert reasons == ["image_count", "bad_turns", "bad_turns", "bad_image_tag", "bad_role",
                       "path_escape", "bad_json"]


def internvl_doc_records(shared_data):
    doc = (shared_data / "llava_internvl_format/internvl_chat_data_format.md").read_text()
    return [json.loads(l) for l in doc.splitlines() if l.startswith('{"id"')]


def test_llava_records_from_internvl_docs(shared_data, tmp_path):
    from PIL import Image

    recs = internvl_doc_records(shared_data)
    kinds = {("video" in r, isinstance(r.get("image"), list), "image" in r) for r in recs}
    assert {(False, True, True), (False, False, True), (False, False, False), (True, False, False)} <= kinds
    for r in recs:  # the docs' images do not ship: draw stand-ins of the stated sizes
        images = r.get("image") or []
        images = [images] if isinstance(images, str) else images
        ws = r.get("width_list") or [r.get("width", 64)] * len(images)
        hs = r.get("height_list") or [r.get("height", 64)] * len(images)
        for p, w, h in zip(images, ws, hs):
            (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (w, h), "white").save(tmp_path / p)
    data = tmp_path / "internvl.json"
    data.write_text(json.dumps(recs, indent=2))  # a JSON array, streamed item by item
    c = convert("llava", [data], tmp_path / "out" / "l.jsonl")
    assert c.read == len(recs) and c.rejected == 1 and dict(c.reasons) == {"unsupported_video": 1}
    rows = load(tmp_path / "out" / "l.jsonl")
    multi = next(r for r in rows if len(r["image_info"]) == 5)
    assert {im["matched_text_index"] for im in multi["image_info"]} == {0}
    assert "<image>" not in multi["text_info"][0]["text"]
    ground = next(r for r in rows if "lady with the blue shirt" in r["text_info"][0]["text"])
    assert len(ground["text_info"]) == 6 and ground["text_info"][5]["tag"] == "no_mask"
    assert ground["text_info"][1]["text"] == \
        "<ref>the lady with the blue shirt</ref><box>[[243, 469, 558, 746]]</box>"
    assert any(not r["image_info"] for r in rows)  # the text-only record is kept


def test_broken_json_array_names_the_line(tmp_path):
    import pytest

    from samples.errors import UserError

    data = tmp_path / "a.json"
    data.write_text('[\n{"conversations": []},\n{"conversations": [}\n]')
    with pytest.raises(UserError, match=r"a.json:3"):
        convert("llava", [data], tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()
