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


def test_weights_series_differ_in_greyscale():
    ax = plot.weights(ax=_ax())
    styles = [line.get_linestyle() for line in ax.lines]
    colours = [line.get_color() for line in ax.lines]
    assert len(set(styles)) == 4 and len(set(colours)) == 4


# --------------------------------------------------------------------------- heatmap ticks


def _overlaps(boxes):
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_heatmap_thins_crowded_tick_labels():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    lrs = np.geomspace(1e-4, 3, 12)
    res = rn.sweep(rn.Momentum, rn.quadratic_2d(), (-5, -2), 5, grid={"beta": [0.0, 0.5], "lr": lrs}, progress=False)
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = plot.sweep_heatmap(res, ax=fig.subplots())
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) < 12
    assert not _overlaps([t.get_window_extent() for t in labels])
    # Every k-th grid value from the first keeps its label, which names the value at its own tick.
    ticks = ax.get_xticks()
    k = int(np.searchsorted(lrs, ticks[1]))
    np.testing.assert_array_equal(ticks, lrs[::k])
    assert [t.get_text() for t in labels] == [plot._format_value(x) for x in ticks]


# --------------------------------------------------------------------------- stability_map


@pytest.fixture(scope="module")
def orbits():
    """RMSProp (eps 1e-6 inside) over lr on 0.1 x1^2 + 2 x2^2: stalled, converged and orbiting runs."""
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 2000, record=10,
                    grid={"lr": np.geomspace(1e-4, 1, 9)}, progress=False)


@pytest.fixture(scope="module")
def stability():
    """RMSProp over lr (log-spaced) x gamma, eps 1: all four classes (gamma = 1 diverges at large lr)."""
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 3000, record=10,
                    grid={"lr": [1e-3, 0.1, 0.4, 2.0], "gamma": [0.9, 1.0]}, fixed={"eps": 1.0}, progress=False)


def _class_layer(ax):
    return next(c for c in ax.collections if c.get_label() == "classes")


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_stability_map_draws_the_codes(stability):
    smap = rn.analysis.stability_map(stability)
    assert set(np.unique(smap.codes)) == {0, 1, 2, 3}
    for given in (stability, smap):
        ax = _ax()
        assert plot.stability_map(given, ax=ax) is ax
        np.testing.assert_array_equal(np.asarray(_class_layer(ax).get_array()).reshape(smap.codes.shape), smap.codes)
        assert _legend_texts(ax) == list(rn.analysis.LABELS)
        (marks,) = [c for c in ax.collections if c.get_label() == "diverged"]
        np.testing.assert_array_equal(~np.ma.getmaskarray(marks.get_array()).reshape(smap.codes.shape),
                                      smap.codes == 3)
        assert (ax.get_ylabel(), ax.get_yscale(), ax.get_xlabel(), ax.get_xscale()) == ("lr", "log", "gamma", "linear")
    assert plot.stability_map(stability, ax=_ax()).get_title(loc="left") == "RMSProp, 3000 steps"


def test_stability_map_class_colours_differ_in_lightness():
    def lightness(colour):
        from matplotlib.colors import to_rgb

        r = np.array(to_rgb(colour))
        lin = np.where(r <= 0.04045, r / 12.92, ((r + 0.055) / 1.055) ** 2.4)
        return 116 * np.cbrt(lin @ [0.2126, 0.7152, 0.0722]) - 16

    values = sorted(lightness(plot.CLASS_COLORS[label]) for label in rn.analysis.LABELS)
    assert np.all(np.diff(values) >= 15)


def test_stability_map_legend_lists_only_the_classes_present():
    smap = rn.analysis.StabilityMap(np.array([[0, 0], [1, 0]], np.int8), {"lr": np.array([0.1, 1.0]),
                                                                          "gamma": np.array([0.5, 0.9])})
    ax = plot.stability_map(smap, ax=_ax())
    assert _legend_texts(ax) == ["converged", "orbit"]
    assert not [c for c in ax.collections if c.get_label() == "diverged"]
    assert ax.get_title(loc="left") == "stability map"


@pytest.mark.parametrize("lr_first", [True, False])
def test_stability_map_threshold_line_on_the_lr_axis(lr_first):
    lrs, gammas = np.geomspace(1e-3, 1, 4), np.array([0.5, 0.9, 0.99])
    codes = np.zeros((4, 3), np.int8)
    axes = {"lr": lrs, "gamma": gammas} if lr_first else {"gamma": gammas, "lr": lrs}
    smap = rn.analysis.StabilityMap(codes if lr_first else codes.T, axes)
    ax = plot.stability_map(smap, ax=_ax(), threshold=0.03)
    (line,) = [ln for ln in ax.lines if ln.get_label() == plot.THRESHOLD_LABEL]
    assert line.get_linestyle() == "--"
    data = line.get_ydata() if lr_first else line.get_xdata()
    np.testing.assert_array_equal(data, [0.03, 0.03])
    assert plot.THRESHOLD_LABEL in _legend_texts(ax)


def test_stability_map_selects_two_axes():
    axes = {"lr": np.array([0.1, 1.0]), "gamma": np.array([0.5, 0.9]), "centered": np.array([False, True])}
    codes = np.arange(8, dtype=np.int8).reshape(2, 2, 2) % 4
    smap = rn.analysis.StabilityMap(codes, axes)
    with pytest.raises(ValueError, match=r"stability_map needs exactly 2 grid axes.*select=\{'centered': 0\}"):
        plot.stability_map(smap, ax=_ax())
    ax = plot.stability_map(smap, ax=_ax(), select={"centered": 1})
    np.testing.assert_array_equal(np.asarray(_class_layer(ax).get_array()).reshape(2, 2), codes[:, :, 1])
    assert "centered = True" in ax.get_title(loc="left")
    with pytest.raises(ValueError, match="unknown axes"):
        plot.stability_map(smap, ax=_ax(), select={"eps": 0})


def test_stability_map_rejects_bad_arguments(study):
    smap = rn.analysis.StabilityMap(np.zeros((2, 2), np.int8), {"gamma": np.array([0.5, 0.9]),
                                                                "eps": np.array([1e-8, 1e-6])})
    with pytest.raises(TypeError, match="smap"):
        plot.stability_map(np.zeros((2, 2)), ax=_ax())
    with pytest.raises(ValueError, match="threshold.*'lr' axis"):
        plot.stability_map(smap, ax=_ax(), threshold=0.1)
    with pytest.raises(TypeError, match="threshold"):
        plot.stability_map(smap, ax=_ax(), threshold="0.1")
    with pytest.raises(ValueError, match="threshold"):
        plot.stability_map(smap, ax=_ax(), threshold=-1.0)
    with pytest.raises(ValueError, match="record=k"):
        plot.stability_map(study, ax=_ax())  # a sweep without loss history


# --------------------------------------------------------------------------- rate


@pytest.fixture(scope="module")
def rates():
    lrs = np.geomspace(0.003, 0.6, 8)
    res = rn.sweep(rn.SGD, rn.quadratic_2d(), (-5.0, -2.0), 400, record=1, grid={"lr": lrs}, progress=False)
    return rn.analysis.fit_rate(res), lrs


def test_rate_draws_decades_per_1000_steps_with_a_band(rates):
    fit, lrs = rates
    assert not fit.found.all() and fit.found.any()  # gaps: too slow at small lr, diverged at the largest
    ax = _ax()
    assert plot.rate(fit, lrs, ax=ax, xlabel="lr", label="SGD") is ax
    (line,) = ax.lines
    expected = -fit.slope * 1000 / np.log(10)
    np.testing.assert_array_equal(line.get_xdata(), lrs)
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-15)
    assert np.array_equal(np.isnan(line.get_ydata()), ~fit.found)
    # SGD on the slow coordinate (h = 0.2): f - f* shrinks by (1 - 0.2 lr)^2 per step.
    theory = -1000 * np.log((1 - 0.2 * lrs) ** 2) / np.log(10)
    np.testing.assert_allclose(line.get_ydata()[fit.found], theory[fit.found], rtol=1e-3)
    (band,) = ax.collections
    vertices = np.concatenate([p.vertices for p in band.get_paths()])
    low = -np.log(fit.rate_high[fit.found]) * 1000 / np.log(10)
    high = -np.log(fit.rate_low[fit.found]) * 1000 / np.log(10)
    assert vertices[:, 1].min() <= low.min() + 1e-9 and vertices[:, 1].max() >= high.max() - 1e-9
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "lr"
    assert "decades of f - f* per 1000 steps" in ax.get_ylabel()
    assert "SGD" in _legend_texts(ax) and "95% interval" in _legend_texts(ax)
    ax = plot.rate(fit, lrs, ax=ax, xlabel="lr", label="again")
    assert ax.lines[1].get_linestyle() != ax.lines[0].get_linestyle()
    assert plot.rate(fit, lrs, ax=_ax(), xlabel="lr", log_x=False).get_xscale() == "linear"


def test_rate_rejects_bad_arguments(rates):
    fit, lrs = rates
    with pytest.raises(TypeError, match="fit"):
        plot.rate({"slope": fit.slope}, lrs, ax=_ax(), xlabel="lr")
    with pytest.raises(ValueError, match=r"values must have the fit's shape \(8,\)"):
        plot.rate(fit, lrs[:3], ax=_ax(), xlabel="lr")
    with pytest.raises(ValueError, match="values must be > 0"):
        plot.rate(fit, lrs - 1, ax=_ax(), xlabel="lr")
    with pytest.raises(TypeError, match="xlabel"):
        plot.rate(fit, lrs, ax=_ax(), xlabel="")
    with pytest.raises(TypeError, match="values"):
        plot.rate(fit, ["a"] * 8, ax=_ax(), xlabel="lr")
    traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (-5.0, -2.0), 300)
    with pytest.raises(ValueError, match="1-D sweep"):
        plot.rate(rn.analysis.fit_rate(traj), [0.1], ax=_ax(), xlabel="lr")


# --------------------------------------------------------------------------- orbit_amplitude


def test_orbit_amplitude_measured_against_theory(orbits):
    ax = _ax()
    assert plot.orbit_amplitude(orbits, ax=ax) is ax
    h = orbits.objective.A
    lrs = orbits.axes["lr"]
    measured = rn.analysis.limit_cycle(orbits).amplitude
    by_label = {line.get_label(): line for line in ax.lines}
    for i in range(2):
        theory = by_label[f"x{i + 1}, theory"]
        x = theory.get_xdata()
        assert x.min() == lrs.min() and x.max() == lrs.max() and np.all(np.isin(lrs, x))
        np.testing.assert_allclose(theory.get_ydata(), rn.analysis.orbit_amplitude(x, h[i], 1e-6), rtol=1e-14)
        points = by_label[f"x{i + 1} (h = {h[i]:.3g}), measured"]
        np.testing.assert_array_equal(points.get_xdata(), lrs)
        shown = np.isfinite(points.get_ydata())
        np.testing.assert_array_equal(points.get_ydata()[shown], measured[shown, i])
        assert shown.sum() >= 3
        # Where the orbit is well above threshold, the measurement is the theory.
        big = lrs * h[i] > 10 * 2e-3
        np.testing.assert_allclose(measured[big, i], rn.analysis.orbit_amplitude(lrs[big], h[i]), rtol=1e-3)
    # The coordinate that converged (x1 at lr h1 <= 2 sqrt(eps) while x2 orbits) sits at the floor.
    assert any(label.startswith("measured <") for label in _legend_texts(ax))
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "units of x" in ax.get_ylabel() and "units of x" in ax.get_xlabel()


def test_orbit_amplitude_takes_eps_from_the_configurations():
    res = rn.sweep(rn.RMSProp, rn.Quadratic([1.0, 10.0]), (1.0, 1.0), 1500, record=10,
                   grid={"lr": [0.1, 0.3], "eps": [1e-4]}, progress=False)
    ax = plot.orbit_amplitude(res, ax=_ax())
    theory = next(line for line in ax.lines if line.get_label() == "x2, theory")
    np.testing.assert_allclose(theory.get_ydata(), rn.analysis.orbit_amplitude(theory.get_xdata(), 10.0, 1e-4))
    over_eps = rn.sweep(rn.RMSProp, rn.Quadratic([1.0, 10.0]), (1.0, 1.0), 1500, record=10,
                        grid={"eps": [1e-6, 1e-4, 1e-2]}, fixed={"lr": 0.3}, progress=False)
    ax = plot.orbit_amplitude(over_eps, ax=_ax(), axis="eps")
    theory = next(line for line in ax.lines if line.get_label() == "x1, theory")
    np.testing.assert_allclose(theory.get_ydata(),
                               [rn.analysis.orbit_amplitude(0.3, 1.0, e) for e in theory.get_xdata()])
    assert ax.get_xlabel().startswith("eps") and ax.get_xscale() == "log"


def test_orbit_amplitude_rejects_bad_arguments(orbits):
    q = rn.quadratic_2d()
    with pytest.raises(TypeError, match="res"):
        plot.orbit_amplitude(rn.simulate(rn.RMSProp(lr=0.4), q, (-5.0, -2.0), 10), ax=_ax())
    with pytest.raises(ValueError, match="axis must be one of"):
        plot.orbit_amplitude(orbits, ax=_ax(), axis="gamma")
    two = rn.sweep(rn.RMSProp, q, (-5.0, -2.0), 20, record=10, grid={"lr": [0.1, 0.4], "gamma": [0.9, 0.99]},
                   progress=False)
    with pytest.raises(ValueError, match="other axes must have one value"):
        plot.orbit_amplitude(two, ax=_ax())
    sgd = rn.sweep(rn.SGD, q, (-5.0, -2.0), 20, record=10, grid={"lr": [0.1, 0.4]}, progress=False)
    with pytest.raises(ValueError, match="eps inside"):
        plot.orbit_amplitude(sgd, ax=_ax())
    outside = rn.sweep(rn.RMSProp, q, (-5.0, -2.0), 20, record=10, grid={"lr": [0.1, 0.4]},
                       fixed={"eps_in_sqrt": False}, progress=False)
    with pytest.raises(ValueError, match="eps inside"):
        plot.orbit_amplitude(outside, ax=_ax())
    dense = rn.sweep(rn.RMSProp, rn.rotated_quadratic_2d(0.3), (-5.0, -2.0), 20, record=10,
                     grid={"lr": [0.1, 0.4]}, progress=False)
    with pytest.raises(ValueError, match="diagonal Quadratic"):
        plot.orbit_amplitude(dense, ax=_ax())


# --------------------------------------------------------------------------- effective_step


def test_effective_step_with_the_orbit_steps():
    traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 300)
    ax = _ax()
    assert plot.effective_step(traj, ax=ax) is ax
    step = rn.analysis.effective_step(traj)
    for i in range(2):
        np.testing.assert_array_equal(ax.lines[i].get_ydata(), step[:, i])
        np.testing.assert_array_equal(ax.lines[i].get_xdata(), np.arange(300))
    h = traj.objective.A
    refs = [line for line in ax.lines if "period-2 orbit" in line.get_label()]
    assert [line.get_ydata()[0] for line in refs] == pytest.approx(2 / h)
    # The run ends on the orbit: the effective steps settle on 2 / h_i.
    np.testing.assert_allclose(step[-1], 2 / h, rtol=1e-3)
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    assert ax.lines[0].get_linestyle() != ax.lines[1].get_linestyle()


def test_effective_step_rejects_bad_arguments(orbits):
    with pytest.raises(TypeError, match="traj"):
        plot.effective_step(orbits, ax=_ax())
    scheduled = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 10, schedule={"lr": [0.1] * 10})
    with pytest.raises(ValueError, match="schedule"):
        plot.effective_step(scheduled, ax=_ax())


# --------------------------------------------------------------------------- schedule


def test_schedule_draws_each_scheduled_value():
    t = np.arange(100)
    traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 100, schedule={"lr": 0.4 / np.sqrt(t + 1)})
    ax = _ax()
    assert plot.schedule(traj, ax=ax) is ax
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), traj.schedule["lr"])
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), t)
    assert ax.get_yscale() == "log"
    plot.schedule({"gamma": 1 - 1 / (t + 2)}, ax=ax)
    assert _legend_texts(ax) == ["lr", "gamma"] and ax.lines[0].get_linestyle() != ax.lines[1].get_linestyle()
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    plot.schedule({"momentum": np.linspace(0, 0.9, 100)}, ax=ax)  # a zero: linear scale
    assert ax.get_yscale() == "linear"


def test_schedule_rejects_bad_arguments():
    traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 10)
    with pytest.raises(ValueError, match="without a schedule"):
        plot.schedule(traj, ax=_ax())
    with pytest.raises(TypeError, match="traj_or_dict"):
        plot.schedule([0.1, 0.2], ax=_ax())
    with pytest.raises(ValueError, match="traj_or_dict"):
        plot.schedule({}, ax=_ax())
    with pytest.raises(ValueError, match=r"traj_or_dict\['lr'\]"):
        plot.schedule({"lr": [[0.1, 0.2]]}, ax=_ax())
    with pytest.raises(TypeError, match=r"traj_or_dict\['lr'\]"):
        plot.schedule({"lr": ["a", "b"]}, ax=_ax())
