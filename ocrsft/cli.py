"""`ocrsft` — one CLI for the whole pipeline; the Makefile targets call these.

Each subcommand lives in the module that does the work. That module exposes
`add_args(parser)` and `main(args) -> int`; it is imported only when its
subcommand runs, so `ocrsft convert` never pays for importing paddle.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from samples.errors import UserError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("converters.run", "convert a source dataset to ERNIEKit JSONL"),
    "validate": ("converters.validate", "check an ERNIEKit JSONL file and its images"),
    "plan": ("training.plan", "resolve a training config and print the max_steps plan"),
    "train": ("ocrsft.train", "plan, check and launch a training run"),
    "export": ("inference.export", "turn a run into a folder paddleocr/paddlex loads"),
    "infer": ("inference.predict", "predict a JSONL set with a model folder"),
    "parity": ("inference.parity", "check the served prompt ids equal the trained ones"),
    "eval": ("evaluation.evaluate", "score predictions with the task's metrics"),
    "compare": ("evaluation.compare", "compare two prediction sets side by side"),
    "tiny-model": ("engines.paddleformers.tiny_model", "build a tiny random PaddleOCR-VL folder"),
    "demo": ("ocrsft.demo", "fine-tune the tiny base reader to new characters on CPU, offline"),
    "pretrain-tiny": ("ocrsft.pretrain_tiny", "train the demo's base checkpoint from scratch (~30 min)"),
}


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes print one line naming the argument, not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ocrsft", description=__doc__.splitlines()[0],
                           epilog="--verbose (anywhere, or OCRSFT_VERBOSE=1): show third-party "
                                  "warnings and DEBUG logging, hidden by default")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == wanted:  # only import the module that will run
            importlib.import_module(module).add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ocrsft.quiet import quiet, take_verbose

    argv, verbose = take_verbose(sys.argv[1:] if argv is None else argv)
    if not verbose:  # before any subcommand imports paddle, paddlex or transformers
        quiet()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except UserError as e:
        print(f"ocrsft {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocrsft {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
