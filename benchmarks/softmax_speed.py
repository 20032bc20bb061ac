"""Speed of softmax-regression training: the compiled loop against the Python loop around ``opt.step``.

Run from the repository root::

    python benchmarks/softmax_speed.py            # 6000 x 784, 10 classes, batch 64, 1 epoch, 5 repetitions
    python benchmarks/softmax_speed.py --quick    # 1 repetition
    python benchmarks/softmax_speed.py --rows 60000 --epochs 2 --dtype float64

It prints one table and writes nothing. The data are synthetic, of
Fashion-MNIST's shape (pixels in [0, 1] around ten random prototypes, labels
cycling through the classes), so the script needs no download.

What each figure means
----------------------
For each backend of :func:`rmsnum.classification.train_softmax`,
``backend="cpu"`` (the compiled loop, :mod:`rmsnum.backends.softmax`) and
``backend="reference"`` (the Python loop: NumPy's BLAS products for each
minibatch gradient, then ``opt.step``), with ``RMSProp(lr=1e-3)``:

- ``run.sec_per_epoch``: the updates alone (minibatch gradients and steps;
  the recorded full-data evaluations excluded), per epoch;
- end to end: the whole ``train_softmax`` call (checks, set-up, the
  evaluations at the end of each epoch), per epoch.

The ratio is reference / cpu (above 1: the compiled loop is faster). The
agreement line gives the largest relative difference of the final parameters
and of the recorded losses (rounding only: the products sum in other orders).

Timing protocol
---------------
Both backends run once before timing (compilation is never timed), then in
turn in each repetition; figures are medians. The compiled loop runs on one
thread; NumPy's BLAS may use every core (``OMP_NUM_THREADS``/
``OPENBLAS_NUM_THREADS`` set it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numba
import numpy as np

import rmsnum as rn
from rmsnum.classification import ClassificationData, SoftmaxRegression, train_softmax

if __package__:
    from .common import print_table
else:  # run as a script
    from common import print_table

BACKENDS = ("cpu", "reference")


def synthetic(rows: int, features: int, classes: int, dtype: str, seed: int = 0) -> ClassificationData:
    """Images of Fashion-MNIST's shape: class prototypes in [0, 1] plus noise, clipped; labels cycling."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((classes, features))
    labels = rng.permutation(np.arange(rows) % classes).astype(np.int64)
    X = np.clip(prototypes[labels] + 0.3 * rng.standard_normal((rows, features)), 0, 1).astype(dtype)
    return ClassificationData(X, labels, tuple(f"class {c}" for c in range(classes)), "synthetic", "synthetic")


def bench(problem: SoftmaxRegression, batch: int, epochs: int, reps: int) -> dict:
    """Median seconds per epoch, per backend: ``kernel`` (``run.sec_per_epoch``) and ``call`` (end to end),
    and the agreement of the last runs."""
    opt = rn.RMSProp(lr=1e-3)
    runs = {b: train_softmax(opt, problem, batch, epochs, backend=b) for b in BACKENDS}  # warm-up
    times: dict[str, dict[str, list[float]]] = {b: {"kernel": [], "call": []} for b in BACKENDS}
    for _ in range(reps):
        for b in BACKENDS:
            start = time.perf_counter()
            runs[b] = train_softmax(opt, problem, batch, epochs, backend=b)
            times[b]["call"].append((time.perf_counter() - start) / epochs)
            times[b]["kernel"].append(runs[b].sec_per_epoch)
    cpu, ref = runs["cpu"], runs["reference"]
    scale = np.max(np.abs(ref.params))
    return {
        **{(b, kind): statistics.median(v) for b in BACKENDS for kind, v in times[b].items()},
        "params_diff": float(np.max(np.abs(cpu.params - ref.params)) / scale),
        "loss_diff": float(np.max(np.abs(cpu.loss_curve - ref.loss_curve) / np.abs(ref.loss_curve))),
        "final_loss": cpu.final_loss,
        "updates": int(cpu.loss_steps[-1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = parser.parse_args(argv)
    reps = 1 if args.quick else 5

    problem = SoftmaxRegression(synthetic(args.rows, args.features, args.classes, args.dtype))
    print(f"rmsnum {rn.__version__}, numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  softmax regression, synthetic {args.rows} x {args.features}, {args.classes} classes, {args.dtype}, "
          f"batch {args.batch}, {args.epochs} epoch(s), RMSProp(lr=1e-3), median of {reps}")
    r = bench(problem, args.batch, args.epochs, reps)
    print_table([
        ("", "sec_per_epoch (updates)", "end to end, per epoch"),
        ("cpu (compiled loop)", f"{r['cpu', 'kernel'] * 1e3:9.2f} ms", f"{r['cpu', 'call'] * 1e3:9.2f} ms"),
        ("reference (Python loop)", f"{r['reference', 'kernel'] * 1e3:9.2f} ms",
         f"{r['reference', 'call'] * 1e3:9.2f} ms"),
        ("ratio reference / cpu", f"{r['reference', 'kernel'] / r['cpu', 'kernel']:9.2f}x",
         f"{r['reference', 'call'] / r['cpu', 'call']:9.2f}x"),
    ])
    print(f"  {r['updates']} updates; final loss {r['final_loss']:.4f}; agreement: params max rel diff "
          f"{r['params_diff']:.2g}, losses {r['loss_diff']:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
