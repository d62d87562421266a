"""The package as a user installs it: a non-editable wheel carries every subpackage and
the recipes, and the versions written in pyproject, the locks and the README agree."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Every top-level package of the checkout: a new one cannot be left out of the wheel.
PACKAGES = tuple(sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                        if p.parent.name not in ("tests", "configs", "bench")))
# erniekit_ext/compat.py runs inside the ERNIEKit venv, where these come from the ERNIE checkout
# (make setup-erniekit builds them from ../shared/vendor or ERNIE_ROOT), not from PyPI.
ERNIE_CHECKOUT = {"ernie", "erniekit", "data_processor"}


def lock_pins() -> dict[str, set[str]]:
    """package -> every version some lock of this repository pins it at."""
    pins: dict[str, set[str]] = {}
    for lock in sorted(ROOT.glob("requirements*.lock")):
        for name, ver in pin_map(lock).items():
            pins.setdefault(name, set()).add(ver)
    return pins


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_pyproject_pins_are_the_locks_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {norm(n): v for n, v in (re.match(r"([^=\[]+)(?:\[.*\])?==(.+)", d).groups()
                                    for d in project["dependencies"])}
    effective = pin_map(ROOT / "requirements.lock")
    with_torch = {**effective, **pin_map(ROOT / "requirements-torch.lock")}
    for name, ver in core.items():
        assert effective.get(name) == ver, f"pyproject pins {name}=={ver}, requirements.lock {effective.get(name)}"
    for dep in project["optional-dependencies"]["torch"]:
        name, ver = re.match(r"([^=\[]+)==(.+)", dep).groups()
        assert with_torch.get(norm(name)) == ver, \
            f"pyproject's torch extra pins {name}=={ver}, the locks {with_torch.get(norm(name))}"
    for dep in project["optional-dependencies"]["test"]:
        name, ver = dep.split("==")
        assert effective.get(norm(name)) == ver


def pin_map(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if m:
            out[norm(m.group(1))] = m.group(2)
    return out


def test_imported_third_party_packages_are_declared():
    """Every top-level module the project's code imports is the standard library, the
    project itself, or a distribution pyproject declares (so a wheel's user gets it)."""
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {norm(re.match(r"[A-Za-z0-9_.\-]+", d).group(0))
                for d in project["dependencies"] + sum(project["optional-dependencies"].values(), [])}
    stdlib = set(sys.stdlib_module_names)
    undeclared = set()
    for pkg in PACKAGES:
        for py in (ROOT / pkg).rglob("*.py"):
            for m in re.finditer(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import\b|import\s+([A-Za-z_]\w*))",
                                 py.read_text(), re.M):
                top = m.group(1) or m.group(2)
                if top in stdlib or top in PACKAGES or top in ("configs", "tests", "__future__"):
                    continue
                if py.relative_to(ROOT) == Path("erniekit_ext/compat.py") and top in ERNIE_CHECKOUT:
                    continue
                names = dists.get(top, [top])
                if not any(norm(d) in declared for d in names):
                    undeclared.add(f"{py.relative_to(ROOT)}: {top}")
    assert not undeclared, sorted(undeclared)


def test_readme_versions_match_the_locks():
    """Each `<pinned package> <version>` the README names is a version a lock pins."""
    pins = lock_pins()
    text = (ROOT / "README.md").read_text()
    wrong = []
    for m in re.finditer(r"\b([A-Za-z][A-Za-z0-9_\-]*)[ =]=?\s?v?(\d+\.\d+(?:\.\d+)*)\b", text):
        name, ver = norm(m.group(1)), m.group(2)
        if name in pins and not any(p == ver or p.startswith(ver + ".") for p in pins[name]):
            wrong.append(f"README says {m.group(0)!r}; locks pin {sorted(pins[name])}")
    assert not wrong, wrong


@pytest.mark.slow
def test_wheel_installs_every_subpackage_and_the_recipes(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", "assets"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("ocrsft-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    expected |= {str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")}
    assert not expected - names, sorted(expected - names)

    # `pip install` of the wheel into a fresh venv; the dependencies come from this venv's
    # site-packages through a .pth path line (a path line does not run the editable
    # install's own .pth, so the checkout stays out of reach).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = dict(cwd=work, capture_output=True, text=True)
    where = subprocess.run([str(py), "-c", "import ocrsft, configs; print(ocrsft.__file__)"], **run)
    assert where.returncode == 0 and where.stdout.startswith(site), where.stdout + where.stderr
    helped = subprocess.run([str(py), "-m", "ocrsft", "--help"], **run)
    assert helped.returncode == 0 and "plan" in helped.stdout, helped.stderr
    (work / "train.jsonl").write_text("{}\n")
    (work / "train.stats.json").write_text('{"written": 29605}')
    planned = subprocess.run([str(py), "-m", "ocrsft", "plan", "configs/paddleocr_vl/full_16k.yaml",
                              "--dataset", "train.jsonl", "--no-write"], **run)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "ceil(59210 / 64) = 926" in planned.stdout  # seed 002's worked example
