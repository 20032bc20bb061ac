"""Sweep speed of rmsnum: RMSProp configurations x steps per second, against C and NumPy.

Run from the repository root::

    python benchmarks/sweep_speed.py           # full run (a few minutes)
    python benchmarks/sweep_speed.py --quick   # fewer repetitions (under two minutes)

It prints one table and writes nothing into the repository: the C baseline
``benchmarks/sweep_baseline.c`` is compiled into a temporary folder (like any
use of rmsnum, running the kernels may refresh Numba's own cache files in
``rmsnum/backends/__pycache__``). Without gcc the C figures are reported as
skipped; without ``rmsnum.sweep`` the rmsnum figures are.

The problem
-----------
The chapter's RMSProp (eps = 1e-6 inside the square root, s0 = 0) on its
2-D quadratic ``f = 0.1 x1**2 + 2 x2**2`` (A = diag(0.2, 4), b = 0) from
(-5, -2) in float64, for every configuration of the grid
``lr = logspace(-3, 0, 316)`` x ``gamma = linspace(0.5, 0.999, 316)``
(99 856 configurations), 1000 steps each. Every step of every configuration
computes the gradient ``A x - b``, the loss, checks that the loss is finite
(a configuration whose loss is not stops there, and its step is reported),
and updates ``s <- gamma*s + (1-gamma)*(g*g); x <- x - (lr*g)/sqrt(s + eps)``.

The three implementations
-------------------------
rmsnum
    ``rn.sweep(rn.RMSProp, rn.quadratic_2d(), ..., record="final")``, timed as
    a user calls it (argument checks and result wrapping included).
C
    ``sweep_baseline.c``: the same computation in blocks of 64 configurations
    that go through each step together, so gcc vectorises it; OpenMP over the
    blocks. Built with ``gcc -O3 -march=native -fno-math-errno -ffp-contract=off
    -fopenmp`` and called through ctypes.
NumPy
    The same formulas on arrays of shape ``(configurations,)``, a Python loop
    over the steps; timed on fewer steps, reported per configuration-step.

What each section means
-----------------------
agreement
    Final x, final loss and divergence step of C, NumPy and ``rmsnum.sweep``,
    and of ``rmsnum.simulate`` for a few configurations, compared bit for bit
    (NaNs count as equal whatever their payload). Besides the main grid, a grid
    with ``lr`` up to 1e300 makes configurations diverge at various steps.
main figure
    Configuration-steps per second of the three, timed round-robin in this
    process with its default threads; ``rmsnum/C`` (target >= 0.9) and
    ``rmsnum/NumPy`` (target >= 10; NumPy runs on one thread).
threads
    rmsnum and C in a fresh process with ``NUMBA_NUM_THREADS`` and
    ``OMP_NUM_THREADS`` set to 1, then 2.
configurations
    rmsnum and C on square grids of about 10**3, 10**4, 10**5 and 10**6
    configurations (1000 steps): the rate should stay flat.

Timing protocol
---------------
Every function is called before timing (JIT compilation or cache loading is
never timed). Figures are medians over repetitions in which the candidates are
timed in turn, so a change in the machine's load affects them alike. Each timed
call of a parallel function (rmsnum, C) is preceded by an untimed call of the
same function on a 16 x 16 grid for 10 steps (4 blocks, so every worker thread
runs): a worker thread idle for ~20 ms takes ~8 ms to wake on the shared VMs
this was written on, and the small call wakes them without doubling the cost of
the long ones. While other processes keep a core busy, every 2-thread call can
also wait a scheduler slice (~4-8 ms) for its second thread, which dominates
the small grids; the header and the last line print the load average. Read the
ratios rather than the absolute rates: the machine is shared and its load
changes from minute to minute.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numba
import numpy as np

import rmsnum as rn

if __package__:  # imported by asv as benchmarks.sweep_speed
    from .common import print_table
else:  # run as a script
    from common import print_table

TARGET_C_RATIO = 0.9
TARGET_NUMPY_RATIO = 10.0
STEPS = 1000
X0 = (-5.0, -2.0)
EPS = 1e-6
MAIN_SIDE = 316  # the main grid is MAIN_SIDE x MAIN_SIDE configurations
SCALING_SIDES = (32, 100, 316, 1000)  # about 10**3, 10**4, 10**5, 10**6 configurations
THREAD_COUNTS = (1, 2)
C_SOURCE = Path(__file__).with_name("sweep_baseline.c")
C_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fopenmp", "-shared", "-fPIC"]
OBJECTIVE = rn.quadratic_2d()
SWEEP = getattr(rn, "sweep", None)
WAKE_SIDE, WAKE_STEPS = 16, 10  # the call that wakes the worker threads before each timed call


class Final(NamedTuple):
    """The outcome of a sweep, one row per configuration (lr-major order)."""

    x: np.ndarray  # (nconf, 2)
    loss: np.ndarray  # (nconf,)
    diverged: np.ndarray  # (nconf,) int64: step whose loss was not finite, else -1


class Grid(NamedTuple):
    """The axes of a grid and its configurations as flat lr-major arrays."""

    lrs: np.ndarray
    gammas: np.ndarray
    lr: np.ndarray
    gamma: np.ndarray

    @property
    def size(self) -> int:
        return self.lr.size


def make_grid(lrs: np.ndarray, gammas: np.ndarray) -> Grid:
    """The cartesian grid ``lrs x gammas``, flattened with lr as the slow axis."""
    lr, gamma = np.meshgrid(lrs, gammas, indexing="ij")
    return Grid(lrs, gammas, lr.ravel(), gamma.ravel())


def square_grid(side: int) -> Grid:
    """``logspace(-3, 0, side)`` learning rates x ``linspace(0.5, 0.999, side)`` gammas."""
    return make_grid(np.logspace(-3, 0, side), np.linspace(0.5, 0.999, side))


# --------------------------------------------------------------------------- implementations


def rmsnum_sweep(grid: Grid, steps: int) -> Final:
    """``rmsnum.sweep`` over the grid, flattened to one row per configuration."""
    res = SWEEP(rn.RMSProp, OBJECTIVE, x0=X0, steps=steps, grid={"lr": grid.lrs, "gamma": grid.gammas},
                fixed={"eps": EPS}, record="final", progress=False)
    return Final(res.final_x.reshape(-1, 2), res.final_loss.reshape(-1), res.diverged_at.reshape(-1))


def numpy_sweep(grid: Grid, steps: int) -> Final:
    """The sweep vectorised over configurations with NumPy, a Python loop over the steps.

    The same operations in the same order as rmsnum and the C baseline; a
    configuration whose loss is not finite keeps its x and loss of that step
    (and goes on computing NaNs, which nothing reads).
    """
    (a0, a1), (b0, b1) = OBJECTIVE.A, OBJECTIVE.b
    lr, gamma = grid.lr, grid.gamma
    omg = 1.0 - gamma
    x0 = np.full(grid.size, X0[0])
    x1 = np.full(grid.size, X0[1])
    s0 = np.zeros(grid.size)
    s1 = np.zeros(grid.size)
    diverged = np.full(grid.size, -1, np.int64)
    stop_x = np.empty((grid.size, 2))
    stop_loss = np.empty(grid.size)
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            ax0, ax1 = a0 * x0, a1 * x1
            g0, g1 = ax0 - b0, ax1 - b1
            loss = 0.5 * (x0 * ax0 + x1 * ax1) - (b0 * x0 + b1 * x1)
            finite = np.isfinite(loss)
            if not finite.all():
                new = ~finite & (diverged < 0)
                diverged[new] = t
                stop_x[new, 0], stop_x[new, 1], stop_loss[new] = x0[new], x1[new], loss[new]
                if (diverged >= 0).all():
                    break
            if t == steps:
                break
            s0 = gamma * s0 + omg * (g0 * g0)
            s1 = gamma * s1 + omg * (g1 * g1)
            x0 = x0 - (lr * g0) / np.sqrt(s0 + EPS)
            x1 = x1 - (lr * g1) / np.sqrt(s1 + EPS)
    stopped = diverged >= 0
    x = np.where(stopped[:, np.newaxis], stop_x, np.stack([x0, x1], axis=1))
    return Final(x, np.where(stopped, stop_loss, loss), diverged)


class CBaseline:
    """The compiled ``sweep_baseline.c``, called through ctypes.

    Parameters
    ----------
    library : pathlib.Path
        The shared library built by :func:`build_c_baseline`.
    """

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        f64 = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
        i64 = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
        fn = self.lib.sweep_rmsprop_2d
        fn.restype = None
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, f64, f64, f64, ctypes.c_double, f64, f64, f64, f64, i64]
        self.lib.sweep_threads.restype = ctypes.c_int
        self.lib.sweep_block.restype = ctypes.c_int
        self.threads = self.lib.sweep_threads()
        self.block = self.lib.sweep_block()
        self.A = np.ascontiguousarray(OBJECTIVE.A, np.float64)
        self.b = np.ascontiguousarray(OBJECTIVE.b, np.float64)
        self.x0 = np.array(X0)

    def __call__(self, grid: Grid, steps: int) -> Final:
        """Run the sweep over ``grid`` for ``steps`` steps."""
        out = Final(np.empty((grid.size, 2)), np.empty(grid.size), np.empty(grid.size, np.int64))
        self.lib.sweep_rmsprop_2d(grid.size, steps, self.A, self.b, self.x0, EPS, grid.lr, grid.gamma, *out)
        return out


def build_c_baseline(folder: Path) -> tuple[Path | None, str]:
    """Compile ``sweep_baseline.c`` into ``folder``.

    Returns
    -------
    library : pathlib.Path or None
        The shared library, or None when gcc is missing or the build failed.
    note : str
        The gcc version, or why the C baseline is skipped.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "C baseline skipped: no gcc on PATH"
    library = folder / "libsweep_baseline.so"
    proc = subprocess.run([gcc, *C_FLAGS, str(C_SOURCE), "-o", str(library)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"C baseline skipped: gcc failed:\n{proc.stderr.strip()}"
    version = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    return library, f"gcc {version}"


# --------------------------------------------------------------------------- timing


def round_robin_medians(fns: dict[str, Callable[[], object]], wake: dict[str, Callable[[], object]],
                        reps: int | None = None, budget: float = 0.0) -> tuple[dict[str, float], int]:
    """Median seconds per call of each function, timed in turn within each repetition.

    Every function is called once before timing. Each timed call of a function
    that has an entry in ``wake`` follows an untimed call of that entry (the
    same implementation on a small grid: it wakes the worker threads without
    doubling the cost of long calls). With ``reps`` None, as many repetitions
    as fit in ``budget`` seconds by the duration of the warm-up calls (3 to 101).

    Returns
    -------
    medians : dict
        Seconds per call, by name.
    reps : int
        The number of repetitions.
    """
    start = time.perf_counter()
    for fn in fns.values():
        fn()
    if reps is None:
        reps = max(3, min(101, int(budget / (time.perf_counter() - start))))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            if name in wake:
                wake[name]()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, reps


def candidates(grid: Grid, steps: int, c_sweep: CBaseline | None) -> dict[str, Callable[[], Final]]:
    """The parallel implementations available here (rmsnum, C), as calls on ``grid``."""
    fns = {}
    if SWEEP is not None:
        fns["rmsnum"] = lambda: rmsnum_sweep(grid, steps)
    if c_sweep is not None:
        fns["C"] = lambda: c_sweep(grid, steps)
    return fns


def wake_calls(c_sweep: CBaseline | None) -> dict[str, Callable[[], Final]]:
    """The untimed calls that precede timed ones: each implementation on a
    WAKE_SIDE x WAKE_SIDE grid (several blocks, so every worker thread runs)."""
    return candidates(square_grid(WAKE_SIDE), WAKE_STEPS, c_sweep)


# --------------------------------------------------------------------------- 1. agreement


def mismatches(a: Final, b: Final) -> np.ndarray:
    """Indices of the configurations whose outcomes differ in any bit (NaN payloads aside)."""

    def same(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (u.view(np.uint64) == v.view(np.uint64)) | (np.isnan(u) & np.isnan(v))

    ok = same(a.x, b.x).all(axis=1) & same(a.loss, b.loss) & (a.diverged == b.diverged)
    return np.flatnonzero(~ok)


def describe(grid: Grid, a: Final, b: Final, names: tuple[str, str]) -> tuple[str, bool]:
    """'identical', or how many configurations differ and the first of them."""
    bad = mismatches(a, b)
    if bad.size == 0:
        return "identical", True
    k = bad[0]
    first = (f"first at lr={float(grid.lr[k])!r}, gamma={float(grid.gamma[k])!r}: "
             + "; ".join(f"{name} x={r.x[k].tolist()!r} loss={float(r.loss[k])!r} diverged={int(r.diverged[k])}"
                         for name, r in zip(names, (a, b))))
    return f"DIFFERENT in {bad.size} of {grid.size} configurations ({first})", False


def simulate_final(lr: float, gamma: float, steps: int) -> Final:
    """The outcome of one configuration run by ``rn.simulate``."""
    traj = rn.simulate(rn.RMSProp(lr=float(lr), gamma=float(gamma), eps=EPS), OBJECTIVE, x0=X0, steps=steps)
    t = steps if traj.diverged_at is None else traj.diverged_at
    return Final(traj.x[t:t + 1].copy(), traj.loss[t:t + 1].copy(),
                 np.array([-1 if traj.diverged_at is None else traj.diverged_at], np.int64))


def pick(grid: Grid, idx: np.ndarray) -> Grid:
    """The configurations ``idx`` of ``grid`` (axes dropped: only the flat arrays are kept)."""
    return Grid(grid.lrs, grid.gammas, grid.lr[idx], grid.gamma[idx])


def take(result: Final, idx: np.ndarray) -> Final:
    """The outcomes of the configurations ``idx``."""
    return Final(result.x[idx], result.loss[idx], result.diverged[idx])


def check_agreement(c_sweep: CBaseline | None, steps: int) -> tuple[list[tuple[str, ...]], bool]:
    """Compare every implementation with the first available of rmsnum.sweep, C, NumPy.

    Two grids: the main one, and one whose learning rates reach 1e300 so that
    configurations diverge at various steps (its side lengths leave the last
    C block partly filled). A few configurations of each are also run by
    ``rn.simulate``. Returns the table rows and whether everything agreed.
    """
    grids = {
        "main grid": square_grid(MAIN_SIDE),
        "divergent grid": make_grid(np.logspace(-3, 300, 61), np.linspace(0.5, 0.999, 17)),
    }
    rows, all_ok = [], True
    for label, grid in grids.items():
        impls = {name: fn() for name, fn in candidates(grid, steps, c_sweep).items()}
        impls["NumPy"] = numpy_sweep(grid, steps)
        names = list(impls)
        ref = names[0]
        n_div = int(np.count_nonzero(impls[ref].diverged >= 0))
        head = f"{label}, {grid.size} configs x {steps} steps, {n_div} diverge"
        for name in names[1:]:
            text, ok = describe(grid, impls[name], impls[ref], (name, ref))
            all_ok &= ok
            rows.append((head, f"{name} vs {ref}", text))
            head = ""
        idx = np.linspace(0, grid.size - 1, 5).astype(int)
        sub = pick(grid, idx)
        sims = [simulate_final(lr, gamma, steps) for lr, gamma in zip(sub.lr, sub.gamma)]
        sim = Final(*(np.concatenate(parts) for parts in zip(*sims)))
        text, ok = describe(sub, take(impls[ref], idx), sim, (ref, "simulate"))
        all_ok &= ok
        rows.append((head, f"{ref} vs rmsnum.simulate ({idx.size} configs)", text))
    return rows, all_ok


# --------------------------------------------------------------------------- 2. main figure


def bench_main(c_sweep: CBaseline | None, steps: int, numpy_steps: int, reps: int) -> dict:
    """Configuration-steps per second of rmsnum, C and NumPy on the main grid, timed round-robin."""
    grid = square_grid(MAIN_SIDE)
    fns = candidates(grid, steps, c_sweep)
    fns["NumPy"] = lambda: numpy_sweep(grid, numpy_steps)
    times, _ = round_robin_medians(fns, wake_calls(c_sweep), reps)
    work = {name: grid.size * (numpy_steps if name == "NumPy" else steps) for name in fns}
    return {"configs": grid.size, "times": times, "rates": {name: work[name] / t for name, t in times.items()}}


# --------------------------------------------------------------------------- 3. threads


def bench_threads(library: Path | None, reps: int) -> dict[int, dict]:
    """The main figure of rmsnum and C in a fresh process per thread count."""
    out = {}
    for k in THREAD_COUNTS:
        env = dict(os.environ, NUMBA_NUM_THREADS=str(k), OMP_NUM_THREADS=str(k))
        cmd = [sys.executable, __file__, "--child", str(library or ""), "--reps", str(reps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the {k}-thread run failed:\n{proc.stdout}\n{proc.stderr}")
        out[k] = json.loads(proc.stdout.splitlines()[-1])
    return out


def child(library: str, reps: int) -> int:
    """Body of a ``--child`` process: time rmsnum and C on the main grid, print one JSON line."""
    c_sweep = CBaseline(Path(library)) if library else None
    grid = square_grid(MAIN_SIDE)
    times, _ = round_robin_medians(candidates(grid, STEPS, c_sweep), wake_calls(c_sweep), reps)
    print(json.dumps({"numba_threads": numba.config.NUMBA_NUM_THREADS,
                      "omp_threads": None if c_sweep is None else c_sweep.threads,
                      "rates": {name: grid.size * STEPS / t for name, t in times.items()}}))
    return 0


# --------------------------------------------------------------------------- 4. configurations


def bench_configs(c_sweep: CBaseline | None, budget: float) -> list[dict]:
    """rmsnum and C on square grids of about 10**3 to 10**6 configurations."""
    out = []
    for side in SCALING_SIDES:
        grid = square_grid(side)
        times, reps = round_robin_medians(candidates(grid, STEPS, c_sweep), wake_calls(c_sweep), budget=budget)
        out.append({"configs": grid.size, "reps": reps,
                    "rates": {name: grid.size * STEPS / t for name, t in times.items()}})
    return out


# --------------------------------------------------------------------------- report


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.3g}".replace("e+0", "e").replace("e+", "e")


def _ratio(num: float | None, den: float | None, target: float | None = None, times: bool = False) -> str:
    if num is None or den is None:
        return ""
    text = f"{num / den:.1f}x" if times else f"{num / den:.2f}"
    if target is not None:
        text += f" (target >= {target:g}: {'ok' if num / den >= target else 'MISSED'})"
    return text


def print_header(q: bool, c_sweep: CBaseline | None, c_note: str) -> None:
    """Versions, threads, the C build (or why it is skipped) and the problem."""
    c_threads = "" if c_sweep is None else f", {c_sweep.threads} OpenMP threads, C block {c_sweep.block}"
    print(f"rmsnum {rn.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"{numba.config.NUMBA_NUM_THREADS} Numba threads{c_threads}, {'quick' if q else 'full'} run")
    print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start "
          f"(other processes slow the 2-thread figures)")
    print("  " + (c_note + " " + " ".join(C_FLAGS) if c_sweep is not None else c_note.replace("\n", "\n    ")))
    if SWEEP is None:
        print("  rmsnum figures skipped: this rmsnum has no sweep()")
    print(f"RMSProp (eps {EPS:g} inside the sqrt, s0 = 0) on {OBJECTIVE.name} from {X0}, float64; "
          f"grid lr = logspace(-3, 0, n) x gamma = linspace(0.5, 0.999, n)")


def print_main(r: dict, numpy_steps: int, reps: int) -> None:
    """The main figure and its two ratios."""
    rates, t = r["rates"], r["times"]
    mine, c_rate, np_rate = rates.get("rmsnum"), rates.get("C"), rates["NumPy"]
    print(f"\nmain figure: {r['configs']} configs x {STEPS} steps (NumPy: x {numpy_steps} steps), "
          f"median of {reps}, configuration-steps per second")
    rows = []
    if mine is not None:
        rows.append(("rmsnum.sweep", f"{t['rmsnum'] * 1e3:8.1f} ms", _rate(mine), ""))
    if c_rate is not None:
        rows.append(("C, blocked", f"{t['C'] * 1e3:8.1f} ms", _rate(c_rate),
                     "rmsnum/C " + _ratio(mine, c_rate, TARGET_C_RATIO) if mine else ""))
    rows.append(("NumPy", f"{t['NumPy'] * 1e3:8.1f} ms", _rate(np_rate),
                 "rmsnum/NumPy " + _ratio(mine, np_rate, TARGET_NUMPY_RATIO, times=True) if mine else ""))
    if c_rate is not None:
        rows.append(("", "", "", "C/NumPy " + _ratio(c_rate, np_rate, times=True)))
    print_table(rows)


def print_threads(runs: dict[int, dict], reps: int) -> None:
    """Rates per thread count and the speed-up from the fewest to the most threads."""
    print(f"\nthreads: a fresh process each, NUMBA_NUM_THREADS = OMP_NUM_THREADS = k, "
          f"{square_grid(MAIN_SIDE).size} configs x {STEPS} steps, median of {reps}")
    rows = []
    for k, run in runs.items():
        kr = run["rates"]
        omp = "" if run["omp_threads"] is None else f", OpenMP {run['omp_threads']}"
        rows.append((f"k = {k} (Numba {run['numba_threads']}{omp})", f"rmsnum {_rate(kr.get('rmsnum'))}",
                     f"C {_rate(kr.get('C'))}",
                     "rmsnum/C " + _ratio(kr["rmsnum"], kr["C"]) if len(kr) == 2 else ""))
    lo, hi = runs[THREAD_COUNTS[0]]["rates"], runs[THREAD_COUNTS[-1]]["rates"]
    rows.append((f"k = {THREAD_COUNTS[-1]} / k = {THREAD_COUNTS[0]}",
                 f"rmsnum {_ratio(hi.get('rmsnum'), lo.get('rmsnum'), times=True)}",
                 f"C {_ratio(hi.get('C'), lo.get('C'), times=True)}"))
    print_table(rows)


def print_configs(scaling: list[dict]) -> None:
    """Rates per grid size and, for rmsnum, the slowest over the fastest."""
    print(f"\nconfigurations: {STEPS} steps, {numba.config.NUMBA_NUM_THREADS} threads, "
          f"configuration-steps per second")
    rows = []
    for s in scaling:
        sr = s["rates"]
        rows.append((f"{s['configs']:>7} configs", f"rmsnum {_rate(sr.get('rmsnum'))}", f"C {_rate(sr.get('C'))}",
                     "rmsnum/C " + _ratio(sr["rmsnum"], sr["C"]) if len(sr) == 2 else "",
                     f"(median of {s['reps']})"))
    if SWEEP is not None:
        spread = [s["rates"]["rmsnum"] for s in scaling]
        rows.append(("rmsnum flatness", f"min/max {min(spread) / max(spread):.2f}"))
    print_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter NumPy runs")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.reps)
    q = args.quick
    main_reps, thread_reps = (5, 5) if q else (21, 21)
    numpy_steps = 20 if q else 100
    scaling_budget = 1.0 if q else 4.0

    with tempfile.TemporaryDirectory(prefix="rmsnum-sweep-bench-") as tmp:
        library, c_note = build_c_baseline(Path(tmp))
        c_sweep = None if library is None else CBaseline(library)
        print_header(q, c_sweep, c_note)

        print("\nagreement (final x, final loss, divergence step; bit for bit)")
        rows, agreed = check_agreement(c_sweep, STEPS)
        print_table(rows)

        print_main(bench_main(c_sweep, STEPS, numpy_steps, main_reps), numpy_steps, main_reps)
        if SWEEP is not None or c_sweep is not None:
            print_threads(bench_threads(library, thread_reps), thread_reps)
            print_configs(bench_configs(c_sweep, scaling_budget))

    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if not agreed:
        print("\nWARNING: the implementations do NOT agree bit for bit (see 'agreement' above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
