"""Training speed of rmsnum: the chapter's minibatch RMSProp run and a 10**4-configuration training sweep.

Run from the repository root::

    python benchmarks/train_speed.py                # full run (about a minute)
    python benchmarks/train_speed.py --quick        # fewer repetitions, 1000 sequential configurations
    python benchmarks/train_speed.py --data PATH    # another copy of airfoil_self_noise.dat

It prints one table and writes nothing into the repository. The data are the
airfoil self-noise file in ``shared/data`` next to the repository (``--data``
overrides it); without it, ``rn.data.synthetic_regression(n=1500, d=5)`` stands
in, and the header says so.

What each figure means
----------------------
chapter run
    ``rn.train(rn.RMSProp(lr=0.01, gamma=0.9), problem, batch_size=10, epochs=2,
    seed=0, record_every=200)``: 1500 examples, 300 updates, the full-data loss
    every 200 examples. Seconds per epoch of (a) the fused kernel alone
    (``run.sec_per_epoch``), (b) the whole ``train()`` call (checks, set-up,
    kernel), (c) the chapter's from-scratch loop in plain NumPy
    (``rmsnum.backends.reference.chapter_rmsprop``) over the same minibatch
    order and initial weights. Targets: NumPy/(a) >= 50x. The agreement line
    gives the largest absolute difference of the recorded losses and of the
    final weights (rounding only: ~1e-16).
training sweep
    ``rn.train_sweep(rn.RMSProp, ..., grid={"lr": logspace(-4, 0, 100),
    "gamma": linspace(0.5, 0.999, 100)})``, 10**4 configurations x 2 epochs,
    end to end, in configuration-epochs per second (target >= 1.5e5), against
    10**4 sequential ``rn.train`` calls over the same grid (target ratio >= 1.6;
    with ``--quick`` every tenth configuration is run and the time scaled by 10).
    Every configuration run sequentially is compared with the sweep bit for
    bit: final loss, loss curve and final parameters.

Timing protocol
---------------
Every function is called before timing (compilation is never timed). Figures
are medians over repetitions in which the candidates are timed in turn, so a
change in the machine's load affects them alike. Each timed sweep follows an
untimed one: idle worker threads take milliseconds to wake.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

import rmsnum as rn
from rmsnum.backends.reference import chapter_rmsprop

if __package__:  # imported by asv as benchmarks.train_speed
    from .common import print_table
else:  # run as a script
    from common import print_table

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/airfoil_self_noise.dat"
CHAPTER = dict(batch_size=10, epochs=2, seed=0, record_every=200)
LR, GAMMA, EPS = 0.01, 0.9, 1e-6
LRS, GAMMAS = np.logspace(-4, 0, 100), np.linspace(0.5, 0.999, 100)
TARGET_NUMPY, TARGET_SWEEP_RATE, TARGET_SWEEP_RATIO = 50.0, 1.5e5, 1.6


def load_data(path: str | None) -> tuple[rn.data.RegressionData, str]:
    """The airfoil data from ``path`` (or the shared copy), else the synthetic stand-in.

    Returns
    -------
    data : RegressionData
    note : str
        Which data were used, for the header.
    """
    if path is not None or DEFAULT_DATA.is_file():
        data = rn.data.load_airfoil(path or DEFAULT_DATA, download=False)
        return data, f"{data.name}, {data.source}"
    data = rn.data.synthetic_regression(n=1500, d=5, noise=0.1, seed=0)
    return data, f"SYNTHETIC stand-in (synthetic_regression(n=1500, d=5, noise=0.1, seed=0)): {DEFAULT_DATA} is absent"


def bench_chapter(problem: rn.LinearRegression, reps: int) -> dict:
    """Seconds per epoch of the kernel, of ``train()`` and of the chapter's NumPy loop, timed in turn.

    Returns
    -------
    dict
        ``kernel``, ``train``, ``numpy`` (median seconds per epoch) and the
        agreement of the last repetition: ``loss_diff``, ``w_diff``.
    """
    epochs = CHAPTER["epochs"]
    order = rn.training.minibatch_order(problem.n, epochs, CHAPTER["seed"])
    opt = rn.RMSProp(lr=LR, gamma=GAMMA, eps=EPS)
    run = rn.train(opt, problem, **CHAPTER)  # compile or load the kernel
    kernel, train, numpy = [], [], []
    for _ in range(reps):
        start = time.perf_counter()
        run = rn.train(opt, problem, **CHAPTER)
        train.append((time.perf_counter() - start) / epochs)
        kernel.append(run.sec_per_epoch)
        w, b = run.initial[:-1].copy(), run.initial[-1:].copy()
        start = time.perf_counter()
        losses = chapter_rmsprop(problem.X, problem.y, w, b, order, LR, GAMMA, EPS, CHAPTER["batch_size"],
                                 CHAPTER["record_every"])
        numpy.append((time.perf_counter() - start) / epochs)
    return {"kernel": statistics.median(kernel), "train": statistics.median(train),
            "numpy": statistics.median(numpy), "n_losses": len(losses),
            "loss_diff": float(np.max(np.abs(np.asarray(losses) - run.loss))),
            "w_diff": float(np.max(np.abs(np.append(w, b) - np.append(run.w, run.b))))}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two float arrays are equal bit for bit (NaNs equal whatever their payload)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all((a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))))


def bench_sweep(problem: rn.LinearRegression, reps: int, sweeps_per_rep: int, stride: int) -> dict:
    """Time ``train_sweep`` on the 100 x 100 grid and sequential ``train`` calls on every ``stride``-th configuration.

    Returns
    -------
    dict
        ``sweep`` and ``sequential`` (median seconds; the latter scaled to the
        whole grid), ``n_seq`` (configurations run sequentially) and ``mismatches``
        (those whose results differ from the sweep's in any bit).
    """
    def sweep() -> rn.SweepResult:
        return rn.train_sweep(rn.RMSProp, problem, batch_size=CHAPTER["batch_size"], epochs=CHAPTER["epochs"],
                              grid={"lr": LRS, "gamma": GAMMAS}, progress=False, seed=CHAPTER["seed"],
                              record_every=CHAPTER["record_every"])

    configs = [np.unravel_index(k, (LRS.size, GAMMAS.size)) for k in range(0, LRS.size * GAMMAS.size, stride)]

    def sequential() -> list[rn.training.TrainResult]:
        return [rn.train(rn.RMSProp(lr=float(LRS[i]), gamma=float(GAMMAS[j])), problem, **CHAPTER) for i, j in configs]

    res = sweep()  # warm-up: compilation, page faults
    sequential()
    t_sweep, t_seq = [], []
    for _ in range(reps):
        for _ in range(sweeps_per_rep):
            sweep()  # untimed: wakes the worker threads
            start = time.perf_counter()
            res = sweep()
            t_sweep.append(time.perf_counter() - start)
        start = time.perf_counter()
        runs = sequential()
        t_seq.append((time.perf_counter() - start) * stride)
    mismatches = sum(
        not (same_bits(res.final_loss[i, j], run.final_loss) and same_bits(res.loss[i, j], run.loss)
             and same_bits(res.final_x[i, j], np.append(run.w, run.b)))
        for (i, j), run in zip(configs, runs))
    return {"sweep": statistics.median(t_sweep), "sequential": statistics.median(t_seq), "n_seq": len(configs),
            "n_sweeps": len(t_sweep), "mismatches": mismatches, "diverged": int(res.diverged.sum())}


def _g(x: float) -> str:
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e")


def _ratio(num: float, den: float, target: float) -> str:
    r = num / den
    return f"{r:.1f}x (target >= {target:g}: {'ok' if r >= target else 'MISSED'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 1000 sequential configurations")
    parser.add_argument("--data", default=None, help=f"airfoil_self_noise.dat (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)
    q = args.quick
    chapter_reps, sweep_reps, sweeps_per_rep, stride = (21, 3, 3, 10) if q else (101, 5, 3, 1)

    data, note = load_data(args.data)
    problem = rn.LinearRegression(data)
    print(f"rmsnum {rn.__version__}, numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{numba.config.NUMBA_NUM_THREADS} Numba threads, load average {os.getloadavg()[0]:.2f}, "
          f"{'quick' if q else 'full'} run")
    print(f"  data: {note}; n = {problem.n}, d = {data.d}")

    r = bench_chapter(problem, chapter_reps)
    print(f"\nchapter run: RMSProp(lr={LR}, gamma={GAMMA}), batch 10, 2 epochs, loss every 200 examples "
          f"({r['n_losses']} points), median of {chapter_reps}, seconds per epoch")
    print_table([
        ("(a) fused kernel (run.sec_per_epoch)", f"{r['kernel'] * 1e6:9.1f} us",
         "NumPy/(a) " + _ratio(r["numpy"], r["kernel"], TARGET_NUMPY)),
        ("(b) train() end to end", f"{r['train'] * 1e6:9.1f} us", f"NumPy/(b) {r['numpy'] / r['train']:.1f}x"),
        ("(c) chapter's NumPy loop", f"{r['numpy'] * 1e6:9.1f} us", ""),
    ])
    print(f"  agreement of (c) with train(): losses max |diff| {r['loss_diff']:.2g}, "
          f"final (w, b) max |diff| {r['w_diff']:.2g}")

    s = bench_sweep(problem, sweep_reps, sweeps_per_rep, stride)
    size = LRS.size * GAMMAS.size
    rate, seq_rate = size * CHAPTER["epochs"] / s["sweep"], size * CHAPTER["epochs"] / s["sequential"]
    scaled = f", {s['n_seq']} configs run, time x {stride}" if stride > 1 else ""
    print(f"\ntraining sweep: {LRS.size} lr in [1e-4, 1] x {GAMMAS.size} gamma in [0.5, 0.999] = {size} configs "
          f"x 2 epochs ({s['diverged']} diverge), configuration-epochs per second")
    print_table([
        ("rn.train_sweep", f"{s['sweep']:8.3f} s", f"{_g(rate)}/s",
         f"target >= {_g(TARGET_SWEEP_RATE)}: {'ok' if rate >= TARGET_SWEEP_RATE else 'MISSED'}",
         f"(median of {s['n_sweeps']})"),
        (f"sequential rn.train{scaled}", f"{s['sequential']:8.3f} s", f"{_g(seq_rate)}/s",
         "sweep/sequential " + _ratio(s["sequential"], s["sweep"], TARGET_SWEEP_RATIO), f"(median of {sweep_reps})"),
    ])
    print(f"  agreement, bit for bit: {s['n_seq'] - s['mismatches']} of {s['n_seq']} sequential configurations "
          "identical to the sweep's (final loss, loss curve, final w and b)")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    agreed = s["mismatches"] == 0 and max(r["loss_diff"], r["w_diff"]) < 1e-12
    if not agreed:
        print("\nWARNING: the results do NOT agree (see the agreement lines above)")
    return 0 if agreed else 1


if __name__ == "__main__":
    sys.exit(main())
