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


# --------------------------------------------------------------------------- sweep_heatmap


@pytest.fixture(scope="module")
def diverging():
    """SGD on the 2-D quadratic: lr from 1e-2 to 1e3 (log-spaced); the largest lr diverge."""
    res = rn.sweep(rn.SGD, rn.quadratic_2d(), None, 50,
                   grid={"lr": np.geomspace(1e-2, 1e3, 6), "x0": [[-5.0, -2.0], [1e-100, 1e-100], [1.0, 1.0]]},
                   progress=False)
    assert res.diverged.any() and not res.diverged.all()
    assert not np.all(res.diverged == res.diverged[:, :1])  # rows differ, so the test sees cells, not rows
    return res


@pytest.fixture(scope="module")
def study():
    """RMSProp over lr (log-spaced) x gamma (linear), no divergence."""
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 50,
                    grid={"lr": np.geomspace(1e-3, 1, 4), "gamma": np.linspace(0.5, 0.999, 5)},
                    fixed={"eps": 1e-6}, progress=False)


def _layers(ax):
    diverged = [c for c in ax.collections if c.get_label() == "diverged"]
    colour = [c for c in ax.collections if c.get_label() != "diverged"]
    return colour, diverged


def test_sweep_heatmap_marks_exactly_the_diverged_cells(diverging):
    ax = _ax()
    assert plot.sweep_heatmap(diverging, ax=ax) is ax
    (mesh,), (marks,) = _layers(ax)
    shown = np.ma.getmaskarray(marks.get_array()).reshape(diverging.shape)
    np.testing.assert_array_equal(~shown, diverging.diverged)
    assert marks.get_hatch()
    # The colour layer leaves the diverged cells out, and shows log10(gap) everywhere else.
    values = mesh.get_array().reshape(diverging.shape)
    np.testing.assert_array_equal(np.ma.getmaskarray(values), diverging.diverged)
    finite = ~diverging.diverged
    floor = np.finfo(np.float64).eps ** 2
    np.testing.assert_allclose(values[finite], np.log10(np.maximum(diverging.gap[finite], floor)))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["diverged"]


def test_sweep_heatmap_axes_colorbar_and_cells(study):
    ax = plot.sweep_heatmap(study, ax=_ax())
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("lr", "gamma")
    assert (ax.get_yscale(), ax.get_xscale()) == ("log", "linear")
    (mesh,), diverged = _layers(ax)
    assert not diverged and ax.get_legend() is None
    assert mesh.cmap.name == "viridis"
    assert mesh.colorbar is not None and mesh.colorbar.ax.get_ylabel().startswith("log10(final loss - f*)")
    corners = mesh.get_coordinates()  # (ny + 1, nx + 1, 2)
    x_edges, y_edges = corners[0, :, 0], corners[:, 0, 1]
    np.testing.assert_allclose((x_edges[1:] + x_edges[:-1]) / 2, study.axes["gamma"])
    np.testing.assert_allclose(np.sqrt(y_edges[1:] * y_edges[:-1]), study.axes["lr"])  # centred in log space
    np.testing.assert_allclose(ax.get_yticks(), study.axes["lr"])
    np.testing.assert_allclose(ax.get_xticks(), study.axes["gamma"])


def test_sweep_heatmap_clips_at_the_floor_and_says_so(study):
    ax = plot.sweep_heatmap(study, np.zeros(study.shape), ax=_ax())
    (mesh,), _ = _layers(ax)
    assert np.all(mesh.get_array() == np.log10(np.finfo(np.float64).eps ** 2))
    assert "clipped at 4.93e-32" in mesh.colorbar.ax.get_ylabel()
    ax = plot.sweep_heatmap(study, np.zeros(study.shape), ax=_ax(), floor=1e-300)
    assert np.all(_layers(ax)[0][0].get_array() == -300)
    ax = plot.sweep_heatmap(study, ax=_ax(), log=False, label="gap")
    (mesh,), _ = _layers(ax)
    np.testing.assert_array_equal(mesh.get_array().reshape(study.shape), study.gap)
    assert mesh.colorbar.ax.get_ylabel() == "gap"
    with pytest.raises(ValueError, match="floor"):
        plot.sweep_heatmap(study, ax=_ax(), floor=0.0)


def test_sweep_heatmap_needs_two_axes():
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 5,
                   grid={"lr": [0.1, 0.4], "gamma": [0.9, 0.99], "centered": [False, True]}, progress=False)
    with pytest.raises(ValueError, match=r"exactly 2 grid axes, the result has 3 \(lr, gamma, centered\); "
                                         r"select a 2-axis slice, e.g. select=\{'centered': 0\}"):
        plot.sweep_heatmap(res, ax=_ax())
    ax = plot.sweep_heatmap(res, ax=_ax(), select={"centered": 1})
    assert "centered = True" in ax.get_title(loc="left")
    (mesh,), _ = _layers(ax)
    np.testing.assert_array_equal(mesh.get_array().reshape(2, 2), np.log10(np.maximum(res.gap[:, :, 1], 2.0**-104)))
    with pytest.raises(ValueError, match="unknown axes"):
        plot.sweep_heatmap(res, ax=_ax(), select={"centered": 0, "momentum": 0})
    with pytest.raises(ValueError, match=r"select\['centered'\] must be an index in \[0, 2\)"):
        plot.sweep_heatmap(res, ax=_ax(), select={"centered": 2})
    one = rn.sweep(rn.SGD, rn.quadratic_2d(), (-5, -2), 5, grid={"lr": [0.1, 0.4]}, progress=False)
    with pytest.raises(ValueError, match="has 1"):
        plot.sweep_heatmap(one, ax=_ax())


def test_sweep_heatmap_rejects_bad_arguments(study):
    with pytest.raises(TypeError, match="SweepResult"):
        plot.sweep_heatmap({"final_loss": 1}, ax=_ax())
    with pytest.raises(ValueError, match="value"):
        plot.sweep_heatmap(study, "loss", ax=_ax())
    with pytest.raises(ValueError, match=r"grid's shape \(4, 5\)"):
        plot.sweep_heatmap(study, np.zeros((5, 4)), ax=_ax())


def test_sweep_heatmap_categorical_axes(diverging):
    ax = plot.sweep_heatmap(diverging, ax=_ax())
    assert ax.get_xlabel() == "x0"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(-5, -2)", "(1e-100, 1e-100)", "(1, 1)"]
