"""Figures: each draws on the given Axes and returns it."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import rmsnum as rn  # noqa: E402
from rmsnum import plot  # noqa: E402


def _ax():
    return Figure().subplots()


def test_weights_figure():
    ax = _ax()
    assert plot.weights(ax=ax) is ax
    assert len(ax.lines) == 4 and ax.get_xlabel() and ax.get_ylabel()


def test_trace_2d_draws_the_trajectory():
    traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 20)
    ax = plot.trace_2d(traj, ax=_ax())
    xs, ys = ax.lines[0].get_data()
    np.testing.assert_array_equal(np.c_[xs, ys], traj.x)
    assert ax.collections  # contours


def test_trace_2d_rejects_other_dimensions():
    traj = rn.simulate(rn.SGD(lr=0.1), rn.Quadratic([1.0, 2.0, 3.0]), (1.0, 1.0, 1.0), 3)
    with pytest.raises(ValueError, match="2-D"):
        plot.trace_2d(traj, ax=_ax())


def test_loss_curve_marks_divergence():
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=1.0), rn.quadratic_2d(), (-5.0, -2.0), 200)
    ax = plot.loss_curve(traj, ax=_ax())
    assert any("diverged" in t.get_text() for t in ax.get_legend().get_texts())
