"""Reproduce paddle's CPU `F.nll_loss` heap bug standalone (erniekit_ext.compat workaround 6).

ERNIE's PaddleOCR-VL loss (ernie/modeling_paddleocr_vl.py:63) is F.nll_loss
over labels that are mostly -100 (the prompt). On CPU paddle this corrupts the
heap: the process dies of a signal, hangs, or reports malloc corruption, after
a varying number of calls. Each case runs in a child process under a timeout,
so a crash is reported, not suffered:

    python bench/nll_loss_cpu_bug.py [--python PY ...] [--calls N]

prints, per interpreter, what `F.nll_loss` did and what erniekit_ext.compat's
`masked_nll` (the same loss by take_along_axis) did on the same inputs, and
each one's largest distance from the same loss computed in numpy.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
import numpy as np
import paddle
import paddle.nn.functional as F
from erniekit_ext.compat import masked_nll

which, calls = sys.argv[1], int(sys.argv[2])
paddle.seed(0)
rng = np.random.default_rng(0)
losses = []
for i in range(calls):
    n, v = 48 + (i % 17), 331
    logits = paddle.to_tensor(rng.standard_normal((n, v)).astype("float32"), stop_gradient=False)
    logp = paddle.log(paddle.exp(logits) / paddle.exp(logits).sum(axis=1, keepdim=True) + 1e-10)
    labels = rng.integers(0, v, n)
    labels[: n * 3 // 4] = -100          # the prompt: no loss
    labels = paddle.to_tensor(labels.astype("int64"))
    loss = F.nll_loss(logp, labels) if which == "nll_loss" else masked_nll(logp, labels)
    loss.backward()
    lp, lab = logp.numpy(), labels.numpy()
    keep = lab != -100
    reference = -lp[np.arange(n)[keep], lab[keep]].mean()   # nll_loss's definition, in numpy
    losses.append(abs(float(loss) - float(reference)))
print(json.dumps(losses))
"""


def run(python: str, which: str, calls: int, timeout: float) -> tuple[str, list[float]]:
    try:
        res = subprocess.run([python, "-c", CHILD, which, str(calls), str(ROOT)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        glibc = [l for l in err.splitlines() if any(w in l for w in ("corrupted", "malloc", "free()"))]
        return f"hung (no result in {timeout:.0f} s)" + (f" after glibc's {glibc[0]!r}" if glibc else ""), []
    if res.returncode < 0:
        return f"killed by {signal.Signals(-res.returncode).name}", []
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1][:120]
        return f"exit {res.returncode}: {tail}", []
    return "ok", json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = [str(p) for p in (ROOT / ".venv-erniekit/bin/python", ROOT / ".venv/bin/python")
               if p.exists()]
    ap.add_argument("--python", action="append", help="interpreters to try (default: both venvs)")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    for py in args.python or default:
        version = subprocess.run([py, "-c", "import paddle; print(paddle.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        line = [f"paddle {version} ({py}), {args.calls} calls:"]
        for which in ("nll_loss", "masked"):
            outcome, gaps = run(py, which, args.calls, args.timeout)
            line.append(f"{'F.nll_loss' if which == 'nll_loss' else 'masked_nll'} {outcome}"
                        + (f" (max |loss - numpy| {max(gaps):.1e})" if gaps else ""))
        print(" ".join(line[:1]) + " " + "; ".join(line[1:]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
