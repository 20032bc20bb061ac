"""The in-place step, ``opt.step(x, g, state)``, as a user calls it (argument checks included).

``time_step`` and ``peakmem_step`` cover every rule family at three sizes and
both dtypes. ``StepRatios`` tracks the chapter's step against the in-run
baselines: the same update as whole-array NumPy expressions (how many times
faster rmsnum is) and a ``prange`` triad moving the same bytes (how far the
step is from the memory-bandwidth limit; 1 is the limit).
"""

import numpy as np

import rmsnum as rn

from .common import ratio, step_vectors, warm_up
from .core_speed import numpy_rmsprop_step, triad

RULES = {
    "rmsprop": lambda: rn.RMSProp(lr=1e-3),  # the chapter's: eps 1e-6 inside the sqrt
    "rmsprop-torch": lambda: rn.RMSProp.torch(lr=1e-3),  # eps outside the sqrt
    "rmsprop-centered-momentum": lambda: rn.RMSProp(lr=1e-3, centered=True, momentum=0.9),
    "sgd": lambda: rn.SGD(lr=1e-3),
    "momentum": lambda: rn.Momentum(lr=1e-3, beta=0.9),
    "adagrad": lambda: rn.Adagrad(lr=1e-3),
    "adam": lambda: rn.Adam(lr=1e-3),
}
SIZES = [10**3, 10**5, 10**7]
DTYPES = ["float32", "float64"]


class Step:
    params = (SIZES, DTYPES, list(RULES))
    param_names = ["n", "dtype", "rule"]

    def setup(self, n, dtype, rule):
        self.x, self.g = step_vectors(n, dtype)
        self.opt = RULES[rule]()
        self.state = self.opt.init(self.x)
        warm_up(lambda: self.opt.step(self.x, self.g, self.state))

    def time_step(self, n, dtype, rule):
        self.opt.step(self.x, self.g, self.state)

    def peakmem_step(self, n, dtype, rule):
        self.opt.step(self.x, self.g, self.state)


class StepRatios:
    """The chapter's RMSProp step against the baselines measured in the same run."""

    params = ([10**5, 10**7], DTYPES)
    param_names = ["n", "dtype"]
    unit = "ratio"

    def setup(self, n, dtype):
        self.x, self.g = step_vectors(n, dtype)
        self.opt = rn.RMSProp(lr=1e-3)
        self.state = self.opt.init(self.x)
        self.xn, self.gn, self.sn = self.x.copy(), self.g.copy(), self.state.s.copy()
        m = n * 5 // 4  # the triad moves 4 arrays per element, the step 5 (read x, g, s; write x, s)
        self.b, self.c, self.d = np.ones(m, dtype), np.full(m, 1e-9, dtype), np.ones(m, dtype)
        self.scalars = tuple(np.dtype(dtype).type(v) for v in (self.opt.lr, self.opt.gamma, self.opt.eps))

    def _step(self):
        self.opt.step(self.x, self.g, self.state)

    def track_numpy_over_step(self, n, dtype):
        """How many times faster than the NumPy expressions (higher is better)."""
        return ratio(lambda: numpy_rmsprop_step(self.xn, self.gn, self.sn, *self.scalars), self._step)

    track_numpy_over_step.unit = "times faster"

    def track_step_over_triad(self, n, dtype):
        """Time of the step over the bandwidth probe moving the same bytes (1 = at the limit)."""
        return ratio(self._step, lambda: triad(self.b, self.c, self.d))

    track_step_over_triad.unit = "ratio to bandwidth limit"
