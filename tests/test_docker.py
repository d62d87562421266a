"""What can be checked of the GPU image without Docker: it runs the Makefile's own commands.

Docker and a GPU are not available here; building and running the image is
documented in the README as untested in CI.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from ocrsft.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def make_dry_run(*args: str) -> list[str]:
    out = subprocess.run(["make", "-n", "-s", "-C", str(ROOT), *args], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.replace("\\\n", " ").splitlines() if line.strip()]


def ocrsft_part(line: str) -> list[str]:
    words = shlex.split(line)
    i = next(i for i, w in enumerate(words) if w == "ocrsft" or w.endswith("/bin/ocrsft"))
    return ["ocrsft"] + words[i + 1:]


def test_docker_train_runs_the_same_command_as_make_train():
    docker = [l for l in make_dry_run("docker-train", "CONFIG=configs/x.yaml") if "docker run" in l]
    local = [l for l in make_dry_run("train", "CONFIG=configs/x.yaml") if "ocrsft train" in l]
    assert docker and local
    assert ocrsft_part(docker[0]) == ocrsft_part(local[0])
    assert "--gpus" in docker[0]


def test_docker_infer_runs_the_same_command_as_make_infer():
    args = ("MODEL=m", "DATA=v.jsonl", "OUT=p.jsonl")
    docker = [l for l in make_dry_run("docker-infer", *args) if "docker run" in l]
    local = [l for l in make_dry_run("infer", *args) if "ocrsft infer" in l]
    assert ocrsft_part(docker[0]) == ocrsft_part(local[0])


def test_every_make_target_calls_a_real_subcommand():
    makefile = (ROOT / "Makefile").read_text()
    used = set(re.findall(r"\$\(OCRSFT\) ([a-z-]+)", makefile))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)


def test_dockerfile_uses_the_project_installer_and_a_pinned_ernie():
    df = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM .*paddle:3\.\d+\.\d+-gpu", df, re.M) or "ARG PADDLE_IMAGE=" in df
    assert "ocrsft/install.py" in df and "--exclude paddlepaddle" in df


def test_dockerfile_pins_the_ernie_commit_of_the_workarounds():
    """The image's ERNIEKit is the snapshot erniekit_ext.compat was written for, built by the
    same installer as `make setup-erniekit`, in a venv of its own that the engine finds."""
    from erniekit_ext.compat import ERNIE_COMMIT

    df = (ROOT / "docker" / "Dockerfile").read_text()
    source = (ROOT.parent / "shared" / "vendor" / "ERNIE-aef7dbe" / "SOURCE.txt")
    if source.is_file():
        assert f"commit: {ERNIE_COMMIT}" in source.read_text()
    assert f"ARG ERNIE_COMMIT={ERNIE_COMMIT}" in df
    assert "git fetch -q --depth 1 ${ERNIE_REPO} ${ERNIE_COMMIT}" in df
    assert re.search(r"install\.py --venv /opt/venv-erniekit --extra erniekit\s*\\?\s*"
                     r"--ernie-root /opt/ERNIE", df)
    assert "ENV OCRSFT_ERNIEKIT_PYTHON=/opt/venv-erniekit/bin/python" in df


@pytest.mark.slow
def test_make_train_without_config_is_a_one_line_error():
    res = subprocess.run(["make", "-s", "-C", str(ROOT), "train"], capture_output=True,
                         text=True)
    assert res.returncode != 0
    assert "CONFIG is not set" in res.stderr
