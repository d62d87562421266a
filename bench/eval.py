"""Evaluation speed: TEDS against the official algorithm, and CER throughput.

    .venv/bin/python bench/eval.py               # ~1-2 minutes
    .venv/bin/python bench/eval.py --cer-pairs 1000000

TEDS: the same pairs (the 21 official demo pairs in ../shared/data/pubtabnet/teds_golden,
plus the 15 PubTabNet examples against their OTSL round trip, both TEDS and
TEDS-S) are scored by `evaluation.metrics.table.teds` and by a plain restatement
of the official ibm-aur-nlp/PubTabNet `src/metric.py` written below (the
`TableTree` + APTED config with a pure-Python Levenshtein, as `distance` 0.1.3
computes it), in one run. Scores must be identical; the ratio is baseline
time / ours. The baseline must also reproduce the published golden scores.

CER: N (pred, ref) pairs made from the real ICDAR2015 labels with edits
applied, scored by `evaluation.metrics.ocr.cer`, against a plain pure-Python
Levenshtein on 2k of them (extrapolated per pair).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from apted import APTED, Config
from lxml import html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("OCRSFT_SHARED", ROOT.parent / "shared")) / "data"

from converters.pubtabnet import pubtabnet_html  # noqa: E402
from evaluation.metrics.ocr import cer  # noqa: E402
from evaluation.metrics.table import otsl_document, teds  # noqa: E402
from formats.otsl import html_to_otsl  # noqa: E402

# ---------------------------------------------------------------- the official algorithm, restated


def py_levenshtein(a, b) -> int:
    """Unit-cost edit distance by the textbook two-row dynamic programme (what `distance` does in Python)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


class OfficialTree:
    def __init__(self, tag, colspan=None, rowspan=None, content=None):
        self.tag, self.colspan, self.rowspan, self.content = tag, colspan, rowspan, content
        self.children = []


class OfficialConfig(Config):
    def rename(self, a, b):
        if a.tag != b.tag or a.colspan != b.colspan or a.rowspan != b.rowspan:
            return 1.0
        if a.tag == "td" and (a.content or b.content):
            return float(py_levenshtein(a.content, b.content)) / max(len(a.content), len(b.content))
        return 0.0

    def children(self, node):
        return node.children


def official_tokens(node, out):
    out.append(f"<{node.tag}>")
    if node.text is not None:
        out += list(node.text)
    for n in node.getchildren():
        official_tokens(n, out)
    if node.tag != "unk":
        out.append(f"</{node.tag}>")
    if node.tag != "td" and node.tail is not None:
        out += list(node.tail)


def official_tree(node, structure_only, parent=None):
    if node.tag == "td":
        cell = []
        if not structure_only:
            official_tokens(node, cell)
            cell = cell[1:-1]
        new = OfficialTree("td", int(node.attrib.get("colspan", "1")), int(node.attrib.get("rowspan", "1")), cell)
    else:
        new = OfficialTree(node.tag)
    if parent is not None:
        parent.children.append(new)
    if node.tag != "td":
        for n in node.getchildren():
            official_tree(n, structure_only, new)
    return new


def official_teds(pred, true, structure_only=False):
    if not pred or not true:
        return 0.0
    parser = html.HTMLParser(remove_comments=True, encoding="utf-8")
    pred, true = html.fromstring(pred, parser=parser), html.fromstring(true, parser=parser)
    if not (pred.xpath("body/table") and true.xpath("body/table")):
        return 0.0
    pred, true = pred.xpath("body/table")[0], true.xpath("body/table")[0]
    n_nodes = max(len(pred.xpath(".//*")), len(true.xpath(".//*")))
    distance = APTED(official_tree(pred, structure_only), official_tree(true, structure_only),
                     OfficialConfig()).compute_edit_distance()
    return 1.0 - float(distance) / n_nodes


# ---------------------------------------------------------------- pairs and timing


def teds_pairs() -> tuple[list[tuple[str, str, str]], dict]:
    golden = SHARED / "pubtabnet" / "teds_golden"
    gt = json.loads((golden / "sample_gt.json").read_text())
    pred = json.loads((golden / "sample_pred.json").read_text())
    expected = json.loads((golden / "expected_teds_scores.json").read_text())
    single = json.loads((golden / "demo_single_pair.json").read_text())
    pairs = [(k, pred[k], gt[k]["html"]) for k in expected["scores"]]
    pairs.append(("demo_single_pair", single["pred"], single["true"]))
    want = dict(expected["scores"], demo_single_pair=expected["single_demo"]["score"])
    for line in (SHARED / "pubtabnet" / "examples" / "PubTabNet_Examples.jsonl").read_text().splitlines():
        item = json.loads(line)
        original = pubtabnet_html(item["html"]["structure"]["tokens"], item["html"]["cells"])
        pairs.append((item["filename"] + " (OTSL round trip)", otsl_document(html_to_otsl(original)), original))
    return pairs, want


def timed(fn, pairs, structure_only):
    t = time.perf_counter()
    scores = [fn(p, g, structure_only=structure_only) for _, p, g in pairs]
    return time.perf_counter() - t, scores


def bench_teds() -> None:
    pairs, want = teds_pairs()
    for structure_only in (False, True):
        name = "TEDS-S" if structure_only else "TEDS"
        t_ref, ref = timed(official_teds, pairs, structure_only)
        t_ours, ours = timed(teds, pairs, structure_only)
        same = sum(a == b for a, b in zip(ref, ours))
        print(f"{name}: {len(pairs)} pairs; official algorithm {t_ref:.2f} s, ours {t_ours:.2f} s, "
              f"ratio {t_ref / t_ours:.1f}x; identical scores {same}/{len(pairs)}")
        if not structure_only:
            golden = [(s, want[k]) for (k, _, _), s in zip(pairs, ref) if k in want]
            print(f"  baseline reproduces the published golden scores: "
                  f"{sum(a == b for a, b in golden)}/{len(golden)}")
        if same != len(pairs):
            bad = [(k, a, b) for (k, _, _), a, b in zip(pairs, ref, ours) if a != b]
            print(f"  MISMATCH: {bad[:3]}")
            sys.exit(1)


def cer_pairs(n: int) -> list[tuple[str, str]]:
    labels = [line.split("\t", 1)[1] for f in ("rec_gt_test.txt", "rec_gt_train.txt")
              for line in (SHARED / "paddleocr_rec" / f).read_text().splitlines()]
    rng = random.Random(0)
    out = []
    for i in range(n):
        ref = " ".join(rng.choice(labels) for _ in range(rng.randint(1, 8)))
        pred = list(ref)
        for _ in range(rng.randint(0, 3)):
            pos = rng.randrange(len(pred) + 1)
            pred[pos:pos + rng.randint(0, 1)] = rng.choice(["", "x", "é", "0"])
        out.append(("".join(pred), ref))
    return out


def bench_cer(n: int) -> None:
    pairs = cer_pairs(n)
    t = time.perf_counter()
    total = sum(cer(p, r) for p, r in pairs)
    t_ours = time.perf_counter() - t
    sample = pairs[:2000]
    t = time.perf_counter()
    ref_total = sum(py_levenshtein(p, r) / len(r) for p, r in sample)
    t_ref = (time.perf_counter() - t) / len(sample) * n
    ours_sample = sum(cer(p, r) for p, r in sample)
    print(f"CER: {n} pairs in {t_ours:.2f} s ({n / t_ours:,.0f} pairs/s, mean CER {total / n:.4f}); "
          f"pure-Python Levenshtein would take {t_ref:.1f} s; ratio {t_ref / t_ours:.0f}x; "
          f"same values on the 2k sample: {abs(ref_total - ours_sample) < 1e-9}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cer-pairs", type=int, default=100_000)
    args = ap.parse_args()
    bench_teds()
    bench_cer(args.cer_pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
