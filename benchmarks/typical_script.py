"""Cold start of a typical user script: how many signatures it compiles and how long it takes.

The script (issue "one engine", item 6): the step in float32 and float64, serial and parallel;
simulate in 2-D and 3-D; Adam; a centered x momentum sweep with ``record`` and ``tol``; train;
train_sweep. Run from the repository root::

    python benchmarks/typical_script.py           # cold: an empty Numba cache, then warm

It runs the script twice in fresh processes, first with ``NUMBA_CACHE_DIR`` pointed at an empty
temporary folder (every kernel compiled), then with the cache that run left, and prints for each
the wall time of the script (``import rmsnum`` excluded, timed apart) and the number of
signatures Numba compiled (``numba:compile`` events: the top-level kernels and every helper they
compile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

SCRIPT = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import rmsnum as rn
from numba.core import event
t1 = time.perf_counter()
with event.install_recorder("numba:compile") as rec:
    for dtype in (np.float32, np.float64):
        for n in (10, 1 << 17):
            opt = rn.RMSProp(lr=1e-3)
            x = np.ones(n, dtype); opt.step(x, np.ones(n, dtype), opt.init(x))
    rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 100)
    rn.simulate(rn.RMSProp(lr=0.1), rn.Quadratic([1.0, 2.0, 3.0]), (1.0, 1.0, 1.0), 100)
    rn.simulate(rn.Adam(lr=0.1), rn.quadratic_2d(), (-5.0, -2.0), 100)
    rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 100,
             {"lr": [0.01, 0.1], "centered": [False, True], "momentum": [0.0, 0.9]},
             record=10, tol=[1e-3], progress=False)
    problem = rn.LinearRegression(rn.data.synthetic_regression(n=100, d=5, noise=0.1, seed=0))
    rn.train(rn.RMSProp(lr=0.01), problem, 10, 1, seed=0)
    rn.train_sweep(rn.RMSProp, problem, 10, 1, {"lr": [0.01, 0.02]}, seed=0, progress=False)
t2 = time.perf_counter()
starts = [e for _, e in rec.buffer if e.status == event.EventStatus.START]
print(json.dumps({"import_s": t1 - t0, "script_s": t2 - t1, "compiled": len(starts)}))
"""


def run(cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rmsnum-typical-") as cache:
        cold = run(cache)
        warm = run(cache)
    print("| run | import (s) | script (s) | signatures compiled |")
    print("|---|---|---|---|")
    for name, figures in (("cold cache", cold), ("warm cache", warm)):
        print(f"| {name} | {figures['import_s']:.2f} | {figures['script_s']:.2f} | {figures['compiled']} |")


if __name__ == "__main__":
    main()
