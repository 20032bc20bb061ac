"""The chapter's airfoil experiment: minibatch RMSProp on linear regression.

Data: the airfoil self-noise data beside the checkout
(``../shared/data/airfoil_self_noise.dat``), or a fixed synthetic stand-in
when it is absent (``train_speed.load_data``). ``Airfoil``: the chapter's run
(batch 10, 2 epochs, lr 0.01, gamma 0.9), its final loss, and its speed-up
over the chapter's NumPy loop. ``TrainingSweep``: 10**3 configurations
(40 lr x 25 gamma) trained at once, the best loss found, and the speed-up over
training them one ``train`` call at a time.
"""

import numpy as np

import rmsnum as rn
from rmsnum.backends.reference import chapter_rmsprop

from .common import ratio, warm_up
from .train_speed import CHAPTER, EPS, GAMMA, LR, load_data

GRID = {"lr": np.logspace(-4, 0, 40), "gamma": np.linspace(0.5, 0.999, 25)}


def _problem() -> rn.LinearRegression:
    return rn.LinearRegression(load_data(None)[0])


class Airfoil:
    def setup(self):
        self.problem = _problem()
        self.opt = rn.RMSProp(lr=LR, gamma=GAMMA, eps=EPS)
        self.run = warm_up(lambda: rn.train(self.opt, self.problem, **CHAPTER))

    def time_chapter_run(self):
        rn.train(self.opt, self.problem, **CHAPTER)

    def track_final_loss(self):
        """Full-data loss after the chapter's 2 epochs (the chapter: about 0.243 on the airfoil data)."""
        return float(self.run.final_loss)

    track_final_loss.unit = "loss"

    def track_speedup_over_chapter_numpy(self):
        """Speed of ``train`` over the chapter's NumPy loop on the same minibatches (higher is better)."""
        p = self.problem
        order = rn.training.minibatch_order(p.n, CHAPTER["epochs"], CHAPTER["seed"])

        def chapter():
            w, b = self.run.initial[:-1].copy(), self.run.initial[-1:].copy()
            chapter_rmsprop(p.X, p.y, w, b, order, LR, GAMMA, EPS, CHAPTER["batch_size"], CHAPTER["record_every"])

        return ratio(chapter, lambda: rn.train(self.opt, p, **CHAPTER), reps=5)

    track_speedup_over_chapter_numpy.unit = "times faster"


class TrainingSweep:
    timeout = 300

    def setup(self):
        self.problem = _problem()
        self.res = warm_up(self._sweep)

    def _sweep(self):
        return rn.train_sweep(rn.RMSProp, self.problem, CHAPTER["batch_size"], CHAPTER["epochs"], GRID,
                              {"eps": EPS}, seed=CHAPTER["seed"], progress=False)

    def time_thousand_configurations(self):
        self._sweep()

    def track_best_final_loss(self):
        """The lowest final loss over the 10**3 configurations."""
        return float(np.nanmin(self.res.final_loss))

    track_best_final_loss.unit = "loss"

    def track_speedup_over_sequential(self):
        """Per-configuration speed of the sweep over one ``train`` call per configuration (higher is better)."""
        lrs = GRID["lr"][:20]

        def sequential():
            for lr in lrs:
                rn.train(rn.RMSProp(lr=lr, gamma=GAMMA, eps=EPS), self.problem, **CHAPTER)

        return ratio(sequential, self._sweep, reps=3, per_call=(lrs.size, self.res.final_loss.size))

    track_speedup_over_sequential.unit = "times faster"
