"""The installed environment: pins, headless OpenCV, and every compat patch target."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution, version

import pytest

from engines.paddleformers import compat


def test_pinned_versions_and_patch_targets():
    compat.check_install()  # raises CompatError on any drift


def test_cv2_imports_without_libgl_and_no_gui_build_is_installed():
    # A fresh interpreter: importing cv2 must not need libGL (seed 002's FAQ).
    out = subprocess.run([sys.executable, "-c", "import cv2; print(cv2.__file__)"],
                         capture_output=True, text=True, check=True).stdout
    assert "cv2" in out
    assert version("opencv-python-headless")
    with pytest.raises(Exception):
        distribution("opencv-python")
    shim = distribution("opencv-contrib-python")  # paddlex's extra check wants this name
    assert all(str(f).split("/")[0].endswith(".dist-info") for f in shim.files), \
        "opencv-contrib-python must be the metadata-only shim, not a GUI build"


def test_numpy_works_with_pyarrow():
    import numpy
    import pyarrow

    assert int(numpy.__version__.split(".")[0]) >= 2
    assert pyarrow.array([1, 2]).to_pylist() == [1, 2]


def test_triton_stub_does_not_leak():
    compat.apply()
    import paddleformers.transformers.paddleocr_vl  # noqa: F401

    assert "triton" not in sys.modules


def test_patch_fails_loudly_when_target_changes(monkeypatch):
    import paddleformers.datasets.template.mm_plugin as mm

    monkeypatch.setattr(mm.PaddleOCRVLPlugin, "__init__", lambda self, *a, **k: None)
    with pytest.raises(compat.CompatError, match="image_augmentation"):
        compat._patch_template_augmentation()


def test_cpu_settings_disable_amp_conflict():
    s = compat.cpu_launch_settings()
    assert s["amp_master_grad"] is False and s["compute_type"] == "float32"
    assert s["device"] == "cpu"


def test_augmentation_switch_reaches_the_registered_template():
    compat.apply()
    from paddleformers.datasets.template.template import TEMPLATES

    plugin = TEMPLATES["paddleocr_vl"].mm_plugin
    compat.set_template_augmentation(False)
    assert not hasattr(plugin, "image_augmentation")
    compat.set_template_augmentation(True)
    assert hasattr(plugin, "image_augmentation")
