"""Quiet by default: third-party warnings and DEBUG logging are hidden unless `--verbose`.

A command's own output (plan, checks, counts, one-line errors) is what a user
reads; PaddlePaddle, PaddleFormers, paddlex and transformers each add import-time
warnings ("PyTorch was not found" even with torch installed: PaddleFormers
switches transformers' torch off on purpose, see engine-facts) and training adds
hundreds of DEBUG lines. Hidden by default:
- Python `warnings` from any module (and in child processes, via PYTHONWARNINGS);
- DEBUG and WARNING records of the PaddleFormers and paddlex loggers (INFO, the
  training log, and ERROR stay), and PaddleFormers' `[DataLoad global_step: N]`
  timing line, which its trainer logs at INFO after every step whatever
  `logging_steps` says (trainer.py, the step loop);
- transformers' advisory warnings and paddle's C++ (glog) INFO/WARNING lines.
`ocrsft --verbose CMD ...` (or `OCRSFT_VERBOSE=1`) shows everything. Variables a
user set already are left as they are.
"""
from __future__ import annotations

import logging
import os
import warnings

NOISY_LOGGERS = ("PaddleFormers", "paddlex", "paddle")
ENV = {
    "PYTHONWARNINGS": "ignore",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "GLOG_minloglevel": "2",
}


PER_STEP = "[DataLoad global_step:"


class DropNoise(logging.Filter):
    """Keeps INFO-family records (the training log) and ERROR+; drops DEBUG, WARNING and
    the per-step data-loading line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return logging.INFO <= record.levelno < logging.WARNING and \
            not str(record.msg).startswith(PER_STEP)


def take_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """(argv without --verbose, whether it was given anywhere or OCRSFT_VERBOSE is set)."""
    verbose = "--verbose" in argv or os.environ.get("OCRSFT_VERBOSE", "") not in ("", "0")
    return [a for a in argv if a != "--verbose"], verbose


def quiet() -> None:
    """Install the filters; call before the command imports any third-party library."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)  # the same object those libraries configure later
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise())
