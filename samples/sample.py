"""The ERNIEKit JSONL sample: how to build one, check one, and read one as a request.

    >>> make_sample(["imgs/a.png"], [("OCR:", "hello")])
    {'image_info': [{'matched_text_index': 0, 'image_url': 'imgs/a.png'}],
     'text_info': [{'text': 'OCR:', 'tag': 'mask'}, {'text': 'hello', 'tag': 'no_mask'}]}

Every converter ends in `make_sample`; every sample written passes `check_sample`;
`requests_from` is how infer, parity and the decoded eval during training read a sample.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from samples.errors import SampleError
from samples.jsonl import dumps, iter_jsonl

MAX_IMAGE_SIDE = 20000
MIN_IMAGE_SIDE = 4


def make_sample(images: Sequence[str], turns: Iterable[tuple[str, str]],
                image_turn: int = 0) -> dict:
    """Images attach to text turn `image_turn` (the first prompt by default)."""
    text_info = []
    for prompt, answer in turns:
        text_info.append({"text": prompt, "tag": "mask"})
        text_info.append({"text": answer, "tag": "no_mask"})
    return {
        "image_info": [{"matched_text_index": image_turn, "image_url": u} for u in images],
        "text_info": text_info,
    }


def is_url(s: str) -> bool:
    return s.startswith(("http://", "https://", "ftp://", "data:"))


def resolve_image(ref: str, image_root: Path | None, allow_urls: bool = False,
                  base: Path | None = None) -> Path | str:
    """The one image-path rule of the project (convert, validate, plan, train, infer,
    parity, eval and the bridge all resolve through here):

    - a relative reference resolves against `base`: the JSONL's folder when reading
      an ERNIEKit file, the label file's root when converting (default image_root);
    - `image_root`, when given, confines: a path outside it is a `path_escape` reject;
    - with no image_root, absolute paths and `..` pass as written (a file `ocrsft
      convert` wrote lies wherever its images are).

    Datasets are untrusted: converters always pass a root (`--image-root`, default
    the labels' folder), so `../../etc/passwd` in a label file is a reject there.
    URLs are only passed through when the user opted in.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise SampleError("bad_image: empty image path")
    if is_url(ref):
        if allow_urls:
            return ref
        raise SampleError(f"url_not_allowed: {ref[:80]} (pass --allow-urls to keep URLs)")
    root = str(image_root) if image_root is not None else None
    if base is None and root is None:
        raise ValueError("resolve_image needs a base folder or an image root")
    return Path(real_image_path(ref, root, str(base if base is not None else image_root)))


def jsonl_image(ref: str, jsonl: Path, image_root: Path | None = None,
                allow_urls: bool = False) -> Path | str:
    """An image reference read from the ERNIEKit file `jsonl`, by the rule above."""
    return resolve_image(ref, Path(image_root) if image_root else None, allow_urls,
                         base=Path(jsonl).parent)


def real_image_path(ref: str, image_root: str | None, base: str,
                    st: list | None = None) -> str:
    """The string core of resolve_image for a local ref (the converter's hot path).

    Folders are resolved through a cache and the file itself costs one lstat,
    which also tells whether it is a symlink; pass a list as `st` to receive
    that stat result (None when the file is missing). `image_root` None: no confinement.
    """
    if "\0" in ref:
        raise SampleError("bad_image: NUL byte in image path")
    head, name = os.path.split(os.path.normpath(os.path.join(real_dir(base), ref)))
    full = os.path.join(real_dir(head), name)
    try:
        info = os.lstat(full)
    except OSError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        full = os.path.realpath(full)
        info = os.stat(full) if os.path.exists(full) else None
    if image_root is not None:
        root = real_dir(image_root)
        if full != root and not full.startswith(root.rstrip(os.sep) + os.sep):
            raise SampleError(f"path_escape: {ref} is outside the image root {root} "
                              f"(--image-root)")
    if st is not None:
        st.append(info)
    return full


@lru_cache(maxsize=1024)
def real_dir(path: str) -> str:
    """realpath of a folder; cached because millions of images share few folders."""
    return os.path.realpath(path)


def check_image(path: Path) -> tuple[int, int]:
    """Decode the image header and return (width, height), or raise SampleError."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise SampleError(f"missing_image: {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise SampleError(f"bad_image: {path.name} does not decode ({e})") from None
    if min(w, h) < MIN_IMAGE_SIDE or max(w, h) > MAX_IMAGE_SIDE:
        raise SampleError(f"image_size: {path.name} is {w}x{h}, outside "
                          f"[{MIN_IMAGE_SIDE}, {MAX_IMAGE_SIDE}]")
    return w, h


def check_shape(obj: dict) -> None:
    """The JSON shape ERNIEKit and PaddleFormers' reader rely on."""
    if not isinstance(obj, dict):
        raise SampleError("bad_json: sample is not an object")
    text_info = obj.get("text_info")
    if not isinstance(text_info, list) or not text_info:
        raise SampleError("bad_shape: text_info must be a non-empty list")
    for i, t in enumerate(text_info):
        if not isinstance(t, dict) or not isinstance(t.get("text"), str):
            raise SampleError(f"bad_shape: text_info[{i}] needs a string 'text'")
        want = "mask" if i % 2 == 0 else "no_mask"
        if t.get("tag") != want:
            raise SampleError(f"bad_tags: text_info[{i}].tag is {t.get('tag')!r}, "
                              f"expected {want!r} (mask/no_mask must alternate)")
        if want == "no_mask" and not t["text"].strip():
            raise SampleError(f"empty_answer: text_info[{i}] is empty")
    if len(text_info) % 2:
        raise SampleError("bad_tags: the sample must end with a no_mask answer")
    image_info = obj.get("image_info", [])
    if not isinstance(image_info, list):
        raise SampleError("bad_shape: image_info must be a list")
    for i, im in enumerate(image_info):
        if not isinstance(im, dict) or not isinstance(im.get("image_url"), str):
            raise SampleError(f"bad_shape: image_info[{i}] needs a string 'image_url'")
        idx = im.get("matched_text_index", 0)
        if not isinstance(idx, int) or not 0 <= idx < len(text_info):
            raise SampleError(f"bad_index: image_info[{i}].matched_text_index {idx!r} "
                              f"is not in [0, {len(text_info)})")


class LocalImage(NamedTuple):
    """A located local image: its real path, and the stat that keys the caches (a
    file changed on disk is a new key). A tuple, because the converter's caches hash
    and compare it once per image."""
    path: str
    mtime_ns: int
    size: int


def locate_images(obj: dict, image_root: Path | None, allow_urls: bool = False,
                  base: Path | None = None) -> list[LocalImage | str]:
    """Every image of a shape-checked sample, by resolve_image's rule: a LocalImage for
    a file that exists, the URL string for an allowed URL; anything else raises."""
    root = str(image_root) if image_root is not None else None
    folder = str(base) if base is not None else root
    out: list[LocalImage | str] = []
    for im in obj.get("image_info", []):
        ref = im["image_url"]
        if is_url(ref) or not ref.strip():
            out.append(resolve_image(ref, image_root, allow_urls, base))
            continue
        if folder is None:
            raise ValueError("locate_images needs a base folder or an image root")
        st: list = []
        path = real_image_path(ref, root, folder, st)
        if st[0] is None or not stat.S_ISREG(st[0].st_mode):
            raise SampleError(f"missing_image: {path}")
        out.append(LocalImage(path, st[0].st_mtime_ns, st[0].st_size))
    return out


@lru_cache(maxsize=4096)
def image_size(image: LocalImage) -> tuple[int, int]:
    """check_image once per file version: many samples share one page image."""
    return check_image(Path(image.path))


def check_sample(obj: dict, image_root: Path | None, allow_urls: bool = False,
                 check_images: bool = True, base: Path | None = None) -> list[LocalImage | str]:
    """The one validator, run by `ocrsft convert` on every sample it writes and by
    `ocrsft validate` on every line it reads: the shape, each image located under the
    root and, with `check_images`, decoded and within size. Returns the images."""
    check_shape(obj)
    images = locate_images(obj, image_root, allow_urls, base)
    if check_images:
        for im in images:
            if isinstance(im, LocalImage):
                image_size(im)
    return images


def relocate(ref: str, image_root: Path, out_dir: Path, absolute: bool,
             resolved: bool = False) -> str:
    """Rewrite a validated local image path relative to the output, or absolute.

    `resolved=True` says ref is already a real absolute path (from resolve_image).
    """
    if is_url(ref):
        return ref
    if not resolved:
        full = Path(ref) if Path(ref).is_absolute() else (image_root / ref)
        ref = str(full.resolve())
    if absolute:
        return ref
    head, name = os.path.split(ref)
    rel = _relpath(head, str(out_dir))
    return name if rel == "." else os.path.join(rel, name)


@lru_cache(maxsize=1024)
def _relpath(folder: str, out_dir: str) -> str:
    return os.path.relpath(folder, real_dir(out_dir))


# --- a sample as a model is asked it: what infer, parity and the decoded eval read ----------

@dataclass
class Request:
    id: str
    prompt: str
    image: str | None
    reference: str
    error: str | None = None
    reference_html: str | None = None  # a table sample's source HTML (converters/pubtabnet.py)


def requests_from(data: Path, image_root: Path | None = None) -> Iterator[Request]:
    """One request per ERNIEKit sample: first image, first prompt, first answer.

    Image paths follow samples/sample.py's rule (relative to the JSONL; `image_root`
    confines only when given)."""
    for line, obj in iter_jsonl(data):
        sid = str(obj.get("id") or hashlib.sha1(dumps(obj).encode()).hexdigest()[:16])
        texts = obj.get("text_info") or [{}]
        prompt = texts[0].get("text", "")
        reference = texts[1].get("text", "") if len(texts) > 1 else ""
        images = obj.get("image_info") or []
        html = obj.get("reference_html")
        req = Request(sid, prompt, None, reference, reference_html=html if isinstance(html, str) else None)
        if images:
            try:
                req.image = str(jsonl_image(images[0].get("image_url", ""), data, image_root))
            except SampleError as e:
                req.error = f"{data}:{line}: {e.reason}"
        yield req
