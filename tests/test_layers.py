"""The layout's one rule: imports run down the pipeline, never up.

    samples (errors, the sample, JSONL, tasks, image tokens)
      <-  formats (OTSL, boxes, LaTeX: what converters write and metrics read)
      <-  converters (source datasets -> samples)  <-  evaluation (metrics, reports)
      <-  models (PaddleOCR-VL folders, versions, templates)
      <-  training (recipe schema, plan, run folder, process layout, devices, TensorBoard)
      <-  erniekit_ext (ERNIEKit's side of the erniekit engine)
      <-  engines (the one engine interface; paddleformers, erniekit, torch)
      <-  inference (export, predict, parity)  <-  ocrsft (the CLI and the steps it chains)

Function-level imports count too: a lazy import upward is still a cycle in waiting."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["samples", "formats", "converters", "evaluation", "models", "training", "erniekit_ext",
          "engines", "inference", "ocrsft"]


def project_imports(py: Path):
    for node in ast.walk(ast.parse(py.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in LAYERS:
                yield node.lineno, top


def test_no_import_runs_upward():
    upward = []
    for level, pkg in enumerate(LAYERS):
        for py in sorted((ROOT / pkg).rglob("*.py")):
            for line, top in project_imports(py):
                if LAYERS.index(top) > level:
                    upward.append(f"{py.relative_to(ROOT)}:{line} imports {top}")
    assert not upward, upward


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "configs", "bench"}
    assert packages == set(LAYERS), packages ^ set(LAYERS)
