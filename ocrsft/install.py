"""Install ocrsft's pinned environment into a venv; run by `make setup`.

Runs with the venv's own python, standard library only (nothing is installed
yet). The lock is installed with --no-deps because the published pins conflict
(fast-dataindex wants numpy<=1.26.4, pyarrow 26 refuses numpy<2): resolving
would either fail or pick a numpy that breaks `datasets`. The lock is the
tested answer, so the resolver never runs.

`--extra erniekit` builds ERNIEKit's own venv instead (engine: erniekit): its
lock, then ERNIE itself as a wheel built from a local checkout (`ernie_wheel`).
The two engines never share a venv: ERNIEKit pins paddleformers 0.4.0.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"core": ROOT / "requirements.lock", "torch": ROOT / "requirements-torch.lock",
         "erniekit": ROOT / "requirements-erniekit.lock"}
# The ERNIE sources ERNIEKit was measured on (see its SOURCE.txt); ERNIE_ROOT overrides.
DEFAULT_ERNIE_ROOT = ROOT.parent / "shared" / "vendor" / "ERNIE-aef7dbe"
# What of a checkout goes into the wheel: `ernie` and `data_processor` have no
# __init__.py, so they are namespace packages and need namespace discovery.
ERNIE_PACKAGES = ("erniekit", "ernie", "data_processor")
ERNIE_DATA = ("*.yaml", "*.yml", "*.json", "*.ttf", "*.png", "*.txt", "*.jinja")
# GUI builds of OpenCV need libGL, which headless machines lack (seed 002's FAQ).
GUI_OPENCV = ("opencv-python", "opencv-contrib-python")
# paddlex refuses to build the PaddleOCR-VL pipeline unless a distribution with
# exactly this name and version is installed; the shim satisfies that check and
# installs no files, so cv2 stays the headless build.
SHIM = ("opencv-contrib-python", "4.10.0.84")
SHIM_MARK = "ocrsft-shim"


def python(venv: Path) -> str:
    """`venv` is a venv folder, or (in the Docker image) a python executable."""
    return str(venv) if venv.is_file() else str(venv / "bin" / "python")


def pip(venv: Path, *args: str) -> None:
    cmd = [python(venv), "-m", "pip", "--disable-pip-version-check", *args]
    subprocess.run(cmd, check=True)


def installed(venv: Path) -> set[str]:
    out = subprocess.run([python(venv), "-m", "pip", "list", "--format=freeze"],
                         check=True, capture_output=True, text=True).stdout
    return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def build_shim_wheel(folder: Path) -> Path:
    name, ver = SHIM
    dist = f"{name.replace('-', '_')}-{ver}.dist-info"
    files = {
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n"
                             f"Summary: {SHIM_MARK}: metadata only; cv2 comes from "
                             f"opencv-python-headless\nRequires-Dist: opencv-python-headless\n"),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: ocrsft\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name.replace('-', '_')}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


def is_shim(venv: Path) -> bool:
    out = subprocess.run([python(venv), "-m", "pip", "show", SHIM[0]],
                         capture_output=True, text=True).stdout
    return SHIM_MARK in out


def install_lock(venv: Path, lock: Path, exclude: set[str]) -> None:
    digest = hashlib.sha256(lock.read_bytes() + repr(sorted(exclude)).encode()).hexdigest()
    stamp = (venv.parent if venv.is_file() else venv) / f".{lock.name}.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        print(f"install: {lock.name} already installed")
        return
    pins = [line for line in lock.read_text().splitlines()
            if line.strip() and not line.startswith("#") and line.split("==")[0].lower() not in exclude]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pins) + "\n")
    pip(venv, "install", "--quiet", "--no-deps", "-r", f.name)
    Path(f.name).unlink()
    stamp.write_text(digest)


def ernie_sources(root: Path) -> list[Path]:
    missing = [p for p in ERNIE_PACKAGES if not (root / p).is_dir()]
    if missing:
        raise SystemExit(f"install: {root}: not an ERNIE checkout (no {', '.join(missing)}/); "
                         "set ERNIE_ROOT to one")
    return sorted(f for pkg in ERNIE_PACKAGES for f in (root / pkg).rglob("*")
                  if f.is_file() and "__pycache__" not in f.parts)


def ernie_pyproject(root: Path) -> str:
    """Our build recipe for a checkout (its setup.py reads a README the snapshot lacks
    and find_packages drops the namespace packages)."""
    text = (root / "erniekit" / "version" / "env.py").read_text()
    version = next((l.split("=")[1].strip().strip('"\'') for l in text.splitlines()
                    if l.strip().startswith("VERSION")), "0.0.0")
    include = ", ".join(f'"{p}", "{p}.*"' for p in ERNIE_PACKAGES)
    data = ", ".join(f'"{d}"' for d in ERNIE_DATA)
    return (f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "erniekit"\nversion = "{version}"\n'
            f'description = "ERNIEKit built by ocrsft from {root}"\n'
            f'[project.scripts]\nerniekit = "erniekit.cli:main"\n\n'
            f'[tool.setuptools.packages.find]\nwhere = ["."]\ninclude = [{include}]\nnamespaces = true\n\n'
            f'[tool.setuptools.package-data]\n"*" = [{data}]\n')


def install_ernie(venv: Path, root: Path) -> None:
    """Build ERNIE into a wheel from a temporary copy of `root` (nothing is written
    into the checkout, which may be read-only) and install it, offline."""
    files = ernie_sources(root)
    h = hashlib.sha256(ernie_pyproject(root).encode())
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    stamp = (venv.parent if venv.is_file() else venv) / ".ernie-wheel.sha256"
    if stamp.exists() and stamp.read_text() == h.hexdigest():
        print(f"install: ERNIE from {root} already installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        src, dist = Path(tmp) / "src", Path(tmp) / "dist"
        for f in files:
            (src / f.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            (src / f.relative_to(root)).write_bytes(f.read_bytes())
        if (root / "LICENSE").is_file():
            (src / "LICENSE").write_bytes((root / "LICENSE").read_bytes())
        (src / "pyproject.toml").write_text(ernie_pyproject(root))
        pip(venv, "wheel", "--quiet", "--no-index", "--no-build-isolation", "--no-deps",
            "-w", str(dist), str(src))
        wheel = next(dist.glob("erniekit-*.whl"))
        pip(venv, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))
    stamp.write_text(h.hexdigest())


def setup_erniekit(venv: Path, root: Path, exclude: set[str]) -> None:
    install_lock(venv, LOCKS["erniekit"], exclude)
    install_ernie(venv, root)
    # The workarounds of erniekit_ext.compat are checked here once, in that venv.
    subprocess.run([python(venv), "-c", "import erniekit_ext.compat as c; c.check_install()"],
                   check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"install: ok ({venv}, ERNIE from {root})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=ROOT / ".venv",
                    help="a venv folder, or a python executable to install into")
    ap.add_argument("--extra", choices=sorted(LOCKS), default="core")
    ap.add_argument("--exclude", action="append", default=[],
                    help="a pinned package to leave alone (the Docker image brings paddlepaddle-gpu)")
    ap.add_argument("--ernie-root", type=Path,
                    default=Path(os.environ.get("ERNIE_ROOT") or DEFAULT_ERNIE_ROOT),
                    help="the ERNIE checkout to build ERNIEKit from (--extra erniekit)")
    args = ap.parse_args()
    venv = args.venv if args.venv.is_file() else args.venv.resolve()
    exclude = {e.lower() for e in args.exclude}
    if args.extra == "erniekit":
        setup_erniekit(venv, args.ernie_root.resolve(), exclude)
        return 0

    install_lock(venv, LOCKS["core"], exclude)
    if args.extra != "core":
        install_lock(venv, LOCKS[args.extra], exclude)
    gui = [p for p in GUI_OPENCV if p in installed(venv) and not (p == SHIM[0] and is_shim(venv))]
    if gui:
        pip(venv, "uninstall", "--quiet", "-y", *gui)
        # Uninstalling a GUI build removes the shared cv2/ folder: put headless back.
        pip(venv, "install", "--quiet", "--no-deps", "--force-reinstall",
            next(l.strip() for l in LOCKS["core"].read_text().splitlines()
                 if l.startswith("opencv-python-headless==")))
    if not is_shim(venv):
        with tempfile.TemporaryDirectory() as tmp:
            pip(venv, "install", "--quiet", "--no-deps", str(build_shim_wheel(Path(tmp))))
    pip(venv, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    # The in-code workarounds are checked here once, so a broken install fails now.
    subprocess.run([python(venv), "-c",
                    "import engines.paddleformers.compat as c; c.check_install()"], check=True)
    print(f"install: ok ({venv})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
