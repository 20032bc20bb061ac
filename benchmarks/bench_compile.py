"""Cold compile time of each kernel family, apart from the steady-state timings.

Each ``timeraw_`` benchmark runs in a fresh Python process whose Numba cache
is an empty temporary folder, so every kernel it needs is compiled from
scratch; ``import rmsnum`` happens in the untimed setup. ``timeraw_import``
is the import alone, for reference. (Loading compiled kernels from the disk
cache, the cost a user pays on every later start, is a fraction of this; see
``core_speed.py``'s start-up figure.)
"""

COLD_CACHE = """
import atexit, os, shutil, tempfile
cache = tempfile.mkdtemp(prefix="rmsnum-asv-cache-")
atexit.register(shutil.rmtree, cache, True)
os.environ["NUMBA_CACHE_DIR"] = cache
import numpy as np
import rmsnum as rn
"""

FAMILIES = {
    # the in-place step, serial (small arrays) and prange (large) instances
    "step": """
opt = rn.RMSProp(lr=1e-3)
for n in (10, 1 << 17):
    x = np.ones(n); opt.step(x, np.ones(n), opt.init(x))
""",
    # a whole trajectory: the multi-configuration kernel with one lane
    "simulate": "rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 10)",
    # a sweep: the same kernel with 64 lanes per block, in parallel
    "sweep": """
rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 10, {"lr": [0.1, 0.2], "gamma": [0.9, 0.99]},
         progress=False)
""",
    # minibatch training (one lane) and a training sweep (64 lanes)
    "train": """
problem = rn.LinearRegression(rn.data.synthetic_regression(n=100, d=5, noise=0.1, seed=0))
rn.train(rn.RMSProp(lr=0.01), problem, 10, 1, seed=0)
rn.train_sweep(rn.RMSProp, problem, 10, 1, {"lr": [0.01, 0.02]}, seed=0, progress=False)
""",
}


class Compile:
    params = [list(FAMILIES)]
    param_names = ["family"]
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0
    timeout = 300

    def timeraw_cold(self, family):
        return FAMILIES[family], COLD_CACHE


class Import:
    number = 1
    repeat = (1, 3, 30.0)
    warmup_time = 0

    def timeraw_import(self):
        return "import rmsnum", "import os"
