"""Core speed of rmsnum: the in-place step, the 2-D simulation and the CLI start-up.

Run from the repository root::

    python benchmarks/core_speed.py           # full run (about a minute)
    python benchmarks/core_speed.py --quick   # fewer repetitions, shorter runs

It prints one table and writes nothing into the repository (temporary
folders only; like any use of rmsnum, importing the kernels may refresh
Numba's own cache files in ``rmsnum/backends/__pycache__`` when they are stale).

What each figure means
----------------------
step, float64 / float32
    ``RMSProp(lr=0.01).step(x, g, state)`` on ``n = 10**7`` elements, in place,
    as a user calls it (argument checks included). The step reads x, g, s and
    writes x, s: 5 array transfers of ``n`` elements. GB/s is that nominal
    traffic divided by the time.

    *triad* is the memory-bandwidth yardstick: a Numba ``prange`` loop
    ``b[i] = b[i] + c[i] * d[i]`` (4 transfers per element) on ``5 n / 4``
    elements, so it moves the same number of bytes as the step. The ratio
    ``step / triad`` says how far the step is from being purely memory-bound;
    the target is <= 1.05.

    *numpy* is the same update written as whole-array NumPy expressions
    (``s[:] = gamma*s + (1-gamma)*g*g; x -= lr*g/np.sqrt(s+eps)``, in place,
    same dtype); the ratio is ``numpy / step`` (how many times faster rmsnum is).
simulate 2-D
    ``rn.simulate(RMSProp(lr=0.4, gamma=0.9), quadratic_2d(), x0=(-5, -2),
    steps=10**6)`` in steps per second, against the chapter's ``rmsprop_2d``
    (Dive into Deep Learning, RMSProp from scratch) looped in plain Python the
    way the book's ``train_2d`` does (appending each iterate to a list), timed on
    fewer steps and scaled. The ratio is the speed-up.
start-up
    Wall time of ``rmsnum demo --out <tmp>`` in a fresh process (the console
    script of the running interpreter's environment), first with a cold Numba
    cache (``NUMBA_CACHE_DIR`` pointed at an empty temporary folder: every
    kernel compiled), then with the cache that run left (kernels loaded).

Timing protocol
---------------
Every function is called before timing (JIT compilation or cache loading is
never timed). Figures are medians over many repetitions, and candidates that
are compared are timed round-robin within each repetition, so a change in the
machine's load affects them alike. Each timed call of a parallel kernel is
preceded by an untimed call of the same function: a worker thread that has
been idle for ~20 ms takes ~8 ms to wake on the shared VMs this was written on.

Read the ratios, not the absolute times: the machine is shared and noisy
(memory bandwidth in particular varies by a factor of 2 from minute to
minute), while the ratios of candidates timed side by side are stable.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Callable

import numba
import numpy as np
from numba import prange

import rmsnum as rn

TARGET_STEP_RATIO = 1.05


@numba.njit(parallel=True)
def triad(b, c, d):
    """In-place triad ``b <- b + c * d``: reads b, c, d and writes b (4 transfers)."""
    for i in prange(b.size):
        b[i] = b[i] + c[i] * d[i]


def numpy_rmsprop_step(x, g, s, lr, gamma, eps):
    """The d2l RMSProp update as whole-array NumPy expressions, in place."""
    s[:] = gamma * s + (1 - gamma) * g * g
    x -= lr * g / np.sqrt(s + eps)


def round_robin_medians(fns: dict[str, Callable[[], object]], reps: int, pre_call: bool = True) -> dict[str, float]:
    """Median seconds per call of each function, timed in turn within each repetition.

    With ``pre_call`` every timed call follows an untimed call of the same function
    (so that the worker threads of a parallel kernel are awake).
    """
    for fn in fns.values():  # warm-up: compilation, page faults, first-touch
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            if pre_call:
                fn()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


# --------------------------------------------------------------------------- 1. step


def bench_step(n: int, dtype: type, reps: int) -> dict:
    """Time ``RMSProp.step`` on ``n`` elements against the triad and NumPy."""
    rng = np.random.default_rng(0)
    opt = rn.RMSProp(lr=0.01)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    state = opt.init(x)
    m = n * 5 // 4  # the triad moves 4 transfers per element, the step 5
    b = np.ones(m, dtype)
    c = np.full(m, 1e-9, dtype)
    d = np.ones(m, dtype)
    xn, gn, sn = x.copy(), g.copy(), state.s.copy()
    lr, gamma, eps = dtype(opt.lr), dtype(opt.gamma), dtype(opt.eps)

    t = round_robin_medians(
        {
            "step": lambda: opt.step(x, g, state),
            "triad": lambda: triad(b, c, d),
            "numpy": lambda: numpy_rmsprop_step(xn, gn, sn, lr, gamma, eps),
        },
        reps,
    )
    nbytes = 5 * n * np.dtype(dtype).itemsize
    return {
        "dtype": np.dtype(dtype).name,
        "n": n,
        "times": t,
        "gbps": {k: nbytes / v / 1e9 for k, v in t.items()},
        "step_over_triad": t["step"] / t["triad"],
        "numpy_over_step": t["numpy"] / t["step"],
    }


# --------------------------------------------------------------------------- 2. simulate


def d2l_rmsprop_2d_loop(steps: int, eta: float = 0.4, gamma: float = 0.9) -> list[tuple[float, float]]:
    """The chapter's ``rmsprop_2d`` driven by a plain Python loop, as ``d2l.train_2d`` does."""

    def rmsprop_2d(x1, x2, s1, s2):
        g1, g2, eps = 0.2 * x1, 4 * x2, 1e-6
        s1 = gamma * s1 + (1 - gamma) * g1 ** 2
        s2 = gamma * s2 + (1 - gamma) * g2 ** 2
        x1 -= eta / math.sqrt(s1 + eps) * g1
        x2 -= eta / math.sqrt(s2 + eps) * g2
        return x1, x2, s1, s2

    x1, x2, s1, s2 = -5.0, -2.0, 0.0, 0.0
    results = [(x1, x2)]
    for _ in range(steps):
        x1, x2, s1, s2 = rmsprop_2d(x1, x2, s1, s2)
        results.append((x1, x2))
    return results


def bench_simulate(steps: int, python_steps: int, reps: int) -> dict:
    """Steps per second of ``rn.simulate`` (compiled loop) and of the book's Python loop."""
    opt = rn.RMSProp(lr=0.4, gamma=0.9)
    objective = rn.quadratic_2d()
    rn.simulate(opt, objective, x0=(-5.0, -2.0), steps=10)  # compile or load the kernel

    def compiled():
        traj = rn.simulate(opt, objective, x0=(-5.0, -2.0), steps=steps)
        assert not traj.diverged

    t = round_robin_medians({"compiled": compiled, "python": lambda: d2l_rmsprop_2d_loop(python_steps)},
                            reps, pre_call=False)
    rate = steps / t["compiled"]
    py_rate = python_steps / t["python"]
    return {"steps": steps, "python_steps": python_steps, "rate": rate, "python_rate": py_rate,
            "speedup": rate / py_rate}


# --------------------------------------------------------------------------- 3. start-up


def _console_script() -> Path:
    """The ``rmsnum`` console script of the environment running this benchmark."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "rmsnum"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("no 'rmsnum' console script next to this interpreter; pip install -e . first")


def _cache_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


def bench_startup(cold_reps: int, warm_reps: int) -> dict:
    """Wall time of ``rmsnum demo`` in a fresh process, cold and warm Numba cache.

    Each cold run points ``NUMBA_CACHE_DIR`` (which rmsnum's cache locator
    honours) at a fresh empty folder; the warm runs reuse the folder the last
    cold run filled.
    """
    script = _console_script()
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="rmsnum-startup-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ)

        def run_demo(tag: str) -> float:
            out = tmp / f"out-{tag}"
            start = time.perf_counter()
            proc = subprocess.run([str(script), "demo", "--out", str(out)], env=env, cwd=tmp,
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"rmsnum demo failed:\n{proc.stdout}\n{proc.stderr}")
            shutil.rmtree(out)
            return elapsed

        for i in range(cold_reps):
            numba_dir = tmp / f"numba-cache{i}"
            numba_dir.mkdir()
            env["NUMBA_CACHE_DIR"] = str(numba_dir)
            cold.append(run_demo(f"cold{i}"))
        for i in range(warm_reps):
            warm.append(run_demo(f"warm{i}"))
        cache_files = _cache_files(numba_dir)
    if cache_files == 0:
        raise RuntimeError("the demo wrote no kernel into NUMBA_CACHE_DIR: the cold/warm figures would be wrong")
    return {"cold": statistics.median(cold), "warm": statistics.median(warm), "cold_reps": cold_reps,
            "warm_reps": warm_reps, "cache_files": cache_files}


# --------------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs")
    parser.add_argument("--n", type=int, default=10**7, help="elements of the stepped arrays (default 10**7)")
    args = parser.parse_args(argv)
    q = args.quick
    step_reps, sim_reps = (8, 3) if q else (40, 7)
    sim_steps, py_steps = (2 * 10**5, 4 * 10**4) if q else (10**6, 2 * 10**5)
    cold_reps, warm_reps = (1, 1) if q else (2, 3)

    print(f"rmsnum {rn.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads, {'quick' if q else 'full'} run")
    rows = []
    for dtype in (np.float64, np.float32):
        r = bench_step(args.n, dtype, step_reps)
        t, gb = r["times"], r["gbps"]
        head = f"step {r['dtype']}, n={r['n']:.0e}"
        rows.append((head, f"{_ms(t['step'])} {gb['step']:5.1f} GB/s",
                     f"triad {_ms(t['triad'])} {gb['triad']:5.1f} GB/s",
                     f"step/triad {r['step_over_triad']:5.2f} (target <= {TARGET_STEP_RATIO})"))
        rows.append(("", "", f"numpy {_ms(t['numpy'])} {gb['numpy']:5.1f} GB/s",
                     f"numpy/step {r['numpy_over_step']:5.2f}x"))
    r = bench_simulate(sim_steps, py_steps, sim_reps)
    rows.append((f"simulate 2-D, {r['steps']:.0e} steps", f"{r['rate']:.3g} steps/s",
                 f"python loop {r['python_rate']:.3g} steps/s", f"speed-up {r['speedup']:6.0f}x"))
    r = bench_startup(cold_reps, warm_reps)
    rows.append(("rmsnum demo start-up", f"cold {r['cold']:.2f} s", f"warm {r['warm']:.2f} s",
                 f"cold-warm {r['cold'] - r['warm']:.2f} s"))
    notes = (f"  (start-up: cold median of {r['cold_reps']}, each with an empty NUMBA_CACHE_DIR; warm median of "
             f"{r['warm_reps']}; {r['cache_files']} cache files written)")

    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
