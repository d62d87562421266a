"""Where bridge code may run, and running it elsewhere when it may not run here.

PaddleFormers imports transformers with `sys.modules["torch"] = None`, so in any
process that imported paddleformers (paddlex does; so do `ocrsft infer` on a
PaddleOCR-VL folder and many tests) transformers has cached "no torch" for good:
its model classes then die with `NameError: name 'nn' is not defined`. The
bridge's entry points are wrapped in `isolated`: in a clean process they run
here, in a tainted one they run in a fresh interpreter (multiprocessing spawn)
and hand back their result or their error.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import multiprocessing
import sys
import traceback

from samples.errors import SampleError, UserError

NEEDED = ("torch", "transformers", "peft", "accelerate")


def torch_blocked() -> bool:
    """True when this process's transformers was imported with torch hidden."""
    utils = sys.modules.get("transformers.utils.import_utils")
    return utils is not None and not utils.is_torch_available()


def require_torch() -> None:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError("engine: torch", f"the PyTorch bridge needs {', '.join(missing)}: "
                                         "run `make setup-torch`")


def _resolve(module: str, qualname: str):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _portable(e: BaseException) -> tuple:
    """Exceptions cross the process boundary as plain tuples (UserError's
    two-argument constructor does not survive pickling)."""
    if isinstance(e, UserError):
        return ("user", e.where, e.reason)
    if isinstance(e, SampleError):
        return ("sample", e.reason)
    return ("error", f"{type(e).__name__}: {e}", traceback.format_exc())


def _rebuild(err: tuple) -> Exception:
    if err[0] == "user":
        return UserError(err[1], err[2])
    if err[0] == "sample":
        return SampleError(err[1])
    return RuntimeError(f"bridge worker failed: {err[1]}\n{err[2]}")


def _call(module: str, qualname: str, args: tuple, kwargs: dict) -> tuple:
    try:
        return True, _resolve(module, qualname)(*args, **kwargs)
    except BaseException as e:  # everything goes back to the caller
        return False, _portable(e)


def isolated(fn):
    """Run `fn` here when transformers can see torch, else in a fresh interpreter.

    `fn` must be a module-level function with picklable arguments and result.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        require_torch()
        if not torch_blocked():
            return fn(*args, **kwargs)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            ok, value = pool.apply(_call, (fn.__module__, fn.__qualname__, args, kwargs))
        if ok:
            return value
        raise _rebuild(value)

    return wrapper


def _serve(conn, module: str, qualname: str, args: tuple, kwargs: dict) -> None:
    try:
        obj = _resolve(module, qualname)(*args, **kwargs)
        conn.send((True, None))
    except BaseException as e:
        conn.send((False, _portable(e)))
        return
    while True:
        request = conn.recv()
        if request is None:
            return
        name, args = request
        try:
            conn.send((True, getattr(obj, name)(*args)))
        except BaseException as e:
            conn.send((False, _portable(e)))


class Remote:
    """A callable object living in a fresh interpreter: `Remote(Cls, *a)(x)` is `Cls(*a)(x)`."""

    def __init__(self, cls, *args, **kwargs):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, cls.__module__, cls.__qualname__,
                                                      args, kwargs), daemon=True)
        self._proc.start()
        self._receive()

    def _receive(self):
        ok, value = self._conn.recv()
        if not ok:
            raise _rebuild(value)
        return value

    def __call__(self, *args):
        self._conn.send(("__call__", args))
        return self._receive()

    def many(self, *args):
        """The object's own `many` (a batch), run over there."""
        self._conn.send(("many", args))
        return self._receive()

    def close(self) -> None:
        if self._proc.is_alive():
            self._conn.send(None)
            self._proc.join(timeout=30)
        self._conn.close()


def construct(cls, *args, **kwargs):
    """`cls(*args)` here when possible, else a `Remote` proxy of it."""
    require_torch()
    return Remote(cls, *args, **kwargs) if torch_blocked() else cls(*args, **kwargs)
