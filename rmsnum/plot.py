"""matplotlib figures. Each function takes an optional Axes, draws on it and
returns it; none calls ``show()``."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from . import analysis
from .analysis import leaky_average_weights
from .objectives import Quadratic
from .optimizers import RMSProp
from .simulate import Trajectory
from .results import SweepResult
from .training import TrainResult

DIVERGED_COLOR = "#d62728"
"""Hatch colour of diverged cells in :func:`sweep_heatmap` (drawn over white, so it reads in greyscale too)."""

SERIES_COLORS = ("#08306b", "#c2571a", "#56b4e9", "#8c2981", "#66a61e")
"""Colours of the series in the line figures, in order of use. Their CIE lightness (21, 50, 70, 36,
62) differs, and each series also gets its own line style and marker, so greyscale prints separate them."""

LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v")

CLASS_COLORS = {"converged": "#253494", "orbit": "#d95f02", "stalled": "#bdbdbd", "diverged": "white"}
"""Fill colours of the classes in :func:`stability_map`, of CIE lightness 27, 55, 77 and 100 (diverged
cells are white, hatched in :data:`DIVERGED_COLOR` as in :func:`sweep_heatmap`)."""

THRESHOLD_LABEL = "theory: lr h = 2 sqrt(eps)"


def _series_style(k: int, *, marker: bool = True) -> dict[str, Any]:
    """Colour, line style (and marker) of the k-th series: distinct in colour and in greyscale."""
    style: dict[str, Any] = {"color": SERIES_COLORS[k % len(SERIES_COLORS)],
                             "linestyle": LINE_STYLES[k % len(LINE_STYLES)]}
    if marker:
        style["marker"] = MARKERS[k % len(MARKERS)]
    return style


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def weights(gammas: Sequence[float] = (0.95, 0.9, 0.8, 0.7), steps: int = 40, ax: Any = None) -> Any:
    """The chapter's figure of the leaky-average weights ``(1 - gamma) gamma**t``.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = weights()
    >>> len(ax.lines), [line.get_linestyle() for line in ax.lines]
    (4, ['-', '--', ':', '-.'])
    """
    ax = _axes(ax)
    t = np.arange(steps)
    for k, (gamma, w) in enumerate(zip(gammas, leaky_average_weights(list(gammas), steps))):
        ax.plot(t, w, label=f"gamma = {gamma:.2f}", linewidth=1.8, **_series_style(k, marker=False))
    ax.set_xlabel("time (steps ago)")
    ax.set_ylabel("weight of the squared gradient")
    ax.legend()
    return ax


def trace_2d(traj: Trajectory, ax: Any = None, *, margin: float = 1.0, resolution: int = 200) -> Any:
    """A 2-D trajectory drawn over the contours of its objective (the chapter's ``show_trace_2d``)."""
    if traj.x is None:
        raise ValueError(f"trace_2d needs the iterates: run simulate with record=1 or k, got record={traj.record!r}")
    if traj.x.shape[1] != 2:
        raise ValueError(f"trace_2d needs a 2-D trajectory, got dimension {traj.x.shape[1]}")
    ax = _axes(ax)
    pts = traj.x[np.all(np.isfinite(traj.x), axis=1)].astype(np.float64)
    lo = np.minimum(pts.min(axis=0), traj.objective.minimizer) - margin
    hi = np.maximum(pts.max(axis=0), traj.objective.minimizer) + margin
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    f = traj.objective.value(np.stack([g1, g2], axis=-1))
    ax.contour(g1, g2, f, levels=20, colors="#1f77b4", linewidths=0.8)
    ax.plot(pts[:, 0], pts[:, 1], "-o", color="#ff7f0e", markersize=4)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(f"{traj.optimizer.name}, lr {getattr(traj.optimizer, 'lr', '')}, {traj.steps} steps")
    return ax


def loss_curve(run: Trajectory | TrainResult, ax: Any = None, *, label: str | None = None) -> Any:
    """A run's loss curve; a divergence is marked.

    For a :class:`~rmsnum.TrainResult`, the chapter's figure: the full-data
    loss against epochs, with the least-squares optimum's loss dashed. For a
    :class:`~rmsnum.Trajectory`, ``log10(f(x_t) - f*)`` against the step (the
    logarithm is taken before plotting, rather than a log-scaled axis, so that
    diverging runs whose loss nears the float range still draw).

    >>> import matplotlib; matplotlib.use("Agg")
    >>> import rmsnum as rn
    >>> problem = rn.LinearRegression(rn.data.synthetic_regression(n=300, d=2))
    >>> ax = loss_curve(rn.train(rn.RMSProp(lr=0.01), problem, batch_size=10, epochs=2))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('epoch', 'loss (full data)')
    """
    ax = _axes(ax)
    if isinstance(run, TrainResult):
        ax.plot(run.loss_epochs, run.loss, label=label)
        floor = f"least-squares optimum {run.problem.f_star:.4f}"
        if floor not in [line.get_label() for line in ax.lines]:  # once, when several runs share the Axes
            ax.axhline(run.problem.f_star, color="0.4", linestyle=":", linewidth=1, label=floor)
        ax.set_xlim(0, run.epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (full data)")
        if run.diverged:
            ax.axvline(run.diverged_at / -(-run.problem.n // run.batch_size), color="0.3", linestyle="--",
                       label=f"diverged at update {run.diverged_at}")
        ax.legend()
        return ax
    gap = np.abs(run.gap.astype(np.float64))
    with np.errstate(divide="ignore"):
        ax.plot(np.arange(gap.size), np.log10(gap), label=label)
    if run.diverged:
        ax.axvline(run.diverged_at, color="0.3", linestyle="--", label=f"diverged at step {run.diverged_at}")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(f(x) - f*)")
    if label is not None or run.diverged:
        ax.legend()
    return ax


def _is_log_spaced(v: np.ndarray) -> bool:
    """Whether positive values are spaced more evenly in log10 than linearly."""
    if v.size < 2 or np.any(v <= 0):
        return False
    if v.size == 2:
        return bool(max(v[0], v[1]) / min(v[0], v[1]) >= 10.0)
    lin, lg = np.diff(v), np.diff(np.log10(v))

    def spread(d: np.ndarray) -> float:
        return float(np.std(d) / abs(np.mean(d)))

    return spread(lg) < spread(lin)


def _format_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "(" + ", ".join(_format_value(c) for c in value) + ")"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return f"{value:.4g}"


def _heatmap_axis(values: np.ndarray) -> tuple[np.ndarray, str, np.ndarray, list[str] | None]:
    """Cell edges, scale, tick positions and (for categorical axes) tick labels of one grid axis.

    Numeric, strictly monotonic axes are drawn at their values, with edges halfway
    between neighbours (in log10 when the values are log-spaced). Booleans, points
    (the ``x0`` axis) and unordered values are drawn at positions 0..n-1, labelled.
    """
    n = len(values)
    numeric = values.ndim == 1 and values.dtype != bool and np.issubdtype(values.dtype, np.number)
    v = values.astype(np.float64) if numeric else None
    if v is not None and n > 1 and not (np.all(np.diff(v) > 0) or np.all(np.diff(v) < 0)):
        v = None
    if v is None:
        positions = np.arange(n, dtype=np.float64)
        return np.arange(n + 1) - 0.5, "linear", positions, [_format_value(x) for x in values]
    log = _is_log_spaced(v)
    w = np.log10(v) if log else v
    if n == 1:
        half = 0.5 if log or w[0] == 0 else 0.5 * abs(w[0])
        edges = np.array([w[0] - half, w[0] + half])
    else:
        mid = (w[1:] + w[:-1]) / 2
        edges = np.concatenate([[2 * w[0] - mid[0]], mid, [2 * w[-1] - mid[-1]]])
    return (10.0 ** edges if log else edges), ("log" if log else "linear"), v, None


def _select_2d(axes: Mapping[str, np.ndarray], arrays: Sequence[np.ndarray], select: Any,
               where: str) -> tuple[tuple[str, np.ndarray], tuple[str, np.ndarray], list[np.ndarray], list[str]]:
    """Reduce grid-shaped ``arrays`` to two grid axes by ``select`` (axis name -> index).

    Returns the first (y) and second (x) remaining axes as ``(name, values)``,
    the arrays sliced alike, and ``"name = value"`` for each selected axis.
    """
    axes = dict(axes)
    arrays = list(arrays)
    chosen: list[str] = []
    if select:
        if not isinstance(select, dict):
            raise TypeError(f"select must be a dict of axis name -> index, got {select!r}")
        unknown = set(select) - set(axes)
        if unknown:
            raise ValueError(f"select names unknown axes {sorted(unknown)}; the result's axes are {list(axes)}")
        index: list[Any] = []
        for name, values in list(axes.items()):
            if name not in select:
                index.append(slice(None))
                continue
            i = select[name]
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not -len(values) <= i < len(values):
                raise ValueError(f"select[{name!r}] must be an index in [0, {len(values)}), got {i!r}")
            index.append(int(i))
            chosen.append(f"{name} = {_format_value(values[i])}")
            del axes[name]
        arrays = [a[tuple(index)] for a in arrays]
    if len(axes) != 2:
        names = ", ".join(axes)
        hint = ""
        if len(axes) > 2:
            extra = list(axes)[2:]
            hint = ("; select a 2-axis slice, e.g. select={" + ", ".join(f"{name!r}: 0" for name in extra) + "}")
        raise ValueError(f"{where} needs exactly 2 grid axes, the result has {len(axes)} ({names}){hint}")
    (yname, yvalues), (xname, xvalues) = axes.items()
    return (yname, yvalues), (xname, xvalues), arrays, chosen


def _diverged_patch() -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor="white", edgecolor=DIVERGED_COLOR, hatch="xxx", label="diverged")


def _hatch_diverged(ax: Any, xedges: np.ndarray, yedges: np.ndarray, diverged: np.ndarray) -> None:
    """The diverged cells as a layer of white cells hatched in red, labelled "diverged"."""
    import matplotlib as mpl
    from matplotlib.colors import ListedColormap

    marks = np.ma.masked_array(np.ones(diverged.shape), mask=~diverged)
    with mpl.rc_context({"hatch.color": DIVERGED_COLOR}):
        ax.pcolor(xedges, yedges, marks, cmap=ListedColormap(["white"]), hatch="xxx",
                  edgecolors=DIVERGED_COLOR, linewidth=0.0, label="diverged")


def _grid_ticks(ticks: np.ndarray, labels: Sequence[str]) -> tuple[Any, Any]:
    """A locator at the grid values that keeps every k-th value, for the smallest k at which the
    labels do not overlap (decided at draw time, from the Axes' size then), and a formatter that
    labels each tick with its own label."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import FuncFormatter, Locator

    ticks = np.asarray(ticks, dtype=np.float64)
    labels = list(labels)

    class GridTicks(Locator):
        def __call__(self) -> np.ndarray:
            axis = self.axis
            if axis is None or ticks.size < 2:
                return ticks
            ax, horizontal = axis.axes, axis.axis_name == "x"
            scale = axis.get_transform()
            lo, hi = scale.transform(np.asarray(axis.get_view_interval(), dtype=np.float64))
            if not (np.isfinite(lo) and np.isfinite(hi)) or hi == lo:
                return ticks
            length = ax.bbox.width if horizontal else ax.bbox.height
            pixels = (scale.transform(ticks) - lo) / (hi - lo) * length
            setting = rcParams["xtick.labelsize" if horizontal else "ytick.labelsize"]
            size = FontProperties(size=setting).get_size_in_points()
            font = size * ax.figure.dpi / 72
            extent = [0.6 * font * len(label) if horizontal else 1.2 * font for label in labels]

            def apart(i: int, j: int) -> bool:
                return abs(pixels[i] - pixels[j]) >= (extent[i] + extent[j]) / 2 + 0.6 * font

            n = ticks.size
            for stride in range(1, n):  # every stride-th value, from the first
                kept = np.arange(0, n, stride)
                if all(apart(i, j) for i, j in zip(kept[:-1], kept[1:])):
                    return ticks[kept]
            return ticks[:1]

    def label(value: float, pos: Any = None) -> str:
        return labels[int(np.argmin(np.abs(ticks - value)))]

    return GridTicks(), FuncFormatter(label)


def _grid_frame(ax: Any, x: tuple, y: tuple) -> None:
    """Scales, ticks, labels and limits of a heatmap's axes; ``x`` and ``y`` are
    ``(edges, scale, ticks, tick labels, name)``: what :func:`_heatmap_axis` gives, plus the name.

    Grid values are the ticks (at most 12 numeric ones; categorical axes all),
    thinned at draw time where their labels would overlap."""
    for axis, (edges, scale, ticks, labels, name) in ((ax.xaxis, x), (ax.yaxis, y)):
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)(scale)
        if labels is None and len(ticks) <= 12:
            labels = [_format_value(t) for t in ticks]
        if labels is not None:
            locator, formatter = _grid_ticks(ticks, labels)
            axis.set_major_locator(locator)
            axis.set_major_formatter(formatter)
            axis.set_ticks([], minor=True)
        axis.set_label_text(name)
    ax.set_xlim(x[0][0], x[0][-1])
    ax.set_ylim(y[0][0], y[0][-1])


def sweep_heatmap(
    res: SweepResult,
    value: Any = "final_loss",
    ax: Any = None,
    log: bool = True,
    *,
    floor: float | None = None,
    select: dict[str, int] | None = None,
    cmap: str = "viridis",
    label: str | None = None,
) -> Any:
    """A heatmap of a sweep over two axes, with the diverged configurations marked.

    The first grid axis runs up the y axis, the second along the x axis, each
    labelled with its name and drawn at its values: cells are centred on the
    grid values with edges halfway between neighbours, computed in log10 (and
    the axis log-scaled) when the values are log-spaced. Axes of booleans,
    starting points or unordered values are drawn at positions 0..n-1 with the
    values as tick labels.

    Configurations that diverged (``res.diverged_at >= 0``) are left out of
    the colour layer and drawn in a separate layer, white with red hatching
    (colours the colormap does not contain, and a pattern that survives
    greyscale printing), listed in the legend as "diverged".

    Parameters
    ----------
    res : SweepResult
        A sweep with exactly two grid axes (or more, reduced to two by ``select``).
    value : "final_loss" or array_like
        ``"final_loss"`` draws ``res.final_loss - f*`` (the optimality gap).
        An array of the grid's shape (e.g. ``res.steps_to_tol[..., 0]``) is
        drawn as given.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None. The colorbar takes room
        from this Axes' figure.
    log : bool, default True
        Draw ``log10(max(value, floor))``. Values below ``floor`` (exact
        zeros, and gaps that rounding left slightly below f*) are drawn at
        ``log10(floor)``, and the colorbar label says so.
    floor : float, optional
        The clipping floor for ``log``; by default ``finfo(dtype).eps**2``
        (about 4.9e-32 in float64, 1.4e-14 in float32). On a quadratic with
        curvature and start of order one, a gap below eps**2 means the iterate
        is within one machine epsilon of the optimum: converged to working
        precision. Runs that converge geometrically reach exact zeros and
        subnormal gaps (1e-300 and below); clipping at the smallest float
        instead would stretch the colour scale over 300 decades and flatten
        every other difference. Pass a smaller floor (down to
        ``np.finfo(float).tiny``) to see those digits anyway.
    select : dict of str to int, optional
        For results with more than two axes: axis name -> index of the value
        to keep, e.g. ``{"eps": 0}``; the selected values go into the title.
    cmap : str, default "viridis"
        A colormap that reads in greyscale (viridis, cividis, magma, ...).
    label : str, optional
        The colorbar label; by default it names the plotted quantity.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        If ``res`` is not a SweepResult.
    ValueError
        If the result (after ``select``) does not have exactly two axes, if
        ``select`` names an unknown axis or index, or ``value`` has the wrong shape.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> res = rn.sweep(rn.Momentum, rn.quadratic_2d(), x0=(-5, -2), steps=200,
    ...                grid={"lr": np.geomspace(1e-2, 10, 4), "beta": [0.0, 0.5, 0.9]}, progress=False)
    >>> res.diverged.sum(axis=1)   # the largest lr diverges for every beta
    array([0, 0, 0, 3])
    >>> ax = sweep_heatmap(res, ax=Figure().subplots())
    >>> ax.get_ylabel(), ax.get_yscale(), ax.get_xlabel(), ax.get_xscale()
    ('lr', 'log', 'beta', 'linear')
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['diverged']
    """
    if not isinstance(res, SweepResult):
        raise TypeError(f"res must be a SweepResult, got {type(res).__name__}")
    grid_shape = res.final_loss.shape
    if isinstance(value, str):
        if value != "final_loss":
            raise ValueError(f'value must be "final_loss" or an array of the grid\'s shape {grid_shape}, got {value!r}')
        data = res.gap
        quantity = "final loss - f*"
    else:
        data = np.asarray(value)
        if data.shape != grid_shape:
            raise ValueError(f"value must have the grid's shape {grid_shape}, got shape {data.shape}")
        if not np.issubdtype(data.dtype, np.number) or data.dtype == bool:
            raise TypeError(f"value must be numeric, got dtype {data.dtype}")
        quantity = "value"
    (yname, yvalues), (xname, xvalues), (data, diverged), chosen = _select_2d(
        res.axes, [data, res.diverged], select, "sweep_heatmap")
    yedges, yscale, yticks, ylabels = _heatmap_axis(yvalues)
    xedges, xscale, xticks, xlabels = _heatmap_axis(xvalues)

    if data.dtype.kind != "f":
        data = data.astype(np.float64)
    if log:
        if floor is None:
            lowest = float(np.finfo(data.dtype).eps) ** 2
        elif isinstance(floor, (bool, np.bool_)) or not isinstance(floor, (int, float, np.integer, np.floating)):
            raise TypeError(f"floor must be a number > 0, got {floor!r}")
        elif not (np.isfinite(floor) and floor > 0):
            raise ValueError(f"floor must be finite and > 0, got {floor!r}")
        else:
            lowest = float(floor)
        with np.errstate(invalid="ignore"):
            clipped = np.isfinite(data) & ~diverged & (data < lowest)
            shown = np.log10(np.maximum(data, lowest), where=np.isfinite(data), out=np.full(data.shape, np.nan))
        quantity = f"log10({quantity})"
        if clipped.any():
            quantity += f", clipped at {lowest:.3g}"
    else:
        shown = data.astype(np.float64)
    colour = np.ma.masked_where(diverged | ~np.isfinite(shown), shown)

    ax = _axes(ax)
    mesh = ax.pcolormesh(xedges, yedges, colour, cmap=cmap, shading="flat")
    if colour.count() == 0:
        mesh.set_clim(0.0, 1.0)
    ax.figure.colorbar(mesh, ax=ax, label=label if label is not None else quantity)
    if diverged.any():
        _hatch_diverged(ax, xedges, yedges, diverged)
        ax.legend(handles=[_diverged_patch()], loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False,
                  borderaxespad=0.2)
    _grid_frame(ax, (xedges, xscale, xticks, xlabels, xname), (yedges, yscale, yticks, ylabels, yname))
    title = f"{res.optimizer}, {res.steps} steps"
    if chosen:
        title += ", " + ", ".join(chosen)
    ax.set_title(title, loc="left")
    return ax


# --- the study figures --------------------------------------------------------------------------------------------


def stability_map(
    smap: analysis.StabilityMap | SweepResult,
    ax: Any = None,
    *,
    select: dict[str, int] | None = None,
    threshold: float | None = None,
) -> Any:
    """Where a sweep converges, orbits, stalls or diverges, as a categorical heatmap.

    Drawn as :func:`sweep_heatmap` draws its grid: the first grid axis up the
    y axis, the second along the x axis, cells centred on the grid values
    (log-scaled axes for log-spaced values). Each class has a fixed colour
    (:data:`CLASS_COLORS`) of its own greyscale lightness; diverged cells are
    white, hatched in red. The legend lists the classes present.

    Parameters
    ----------
    smap : StabilityMap or SweepResult
        The classes (:func:`rmsnum.analysis.stability_map`), or a sweep run
        with ``record=k`` to classify.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None.
    select : dict of str to int, optional
        For grids of more than two axes: axis name -> index of the value to
        keep, as in :func:`sweep_heatmap`; the selected values go into the title.
    threshold : float, optional
        The theoretical stability threshold of the learning rate (e.g.
        :func:`rmsnum.analysis.instability_threshold`), drawn as a dashed
        line across the ``"lr"`` axis, labelled ``"theory: lr h = 2 sqrt(eps)"``.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        If ``smap`` is neither a StabilityMap nor a SweepResult, or
        ``threshold`` is not a real number.
    ValueError
        If the grid (after ``select``) does not have two axes, the sweep has
        no loss history, ``threshold`` is not finite and > 0, or it is given
        while neither axis is a numeric ``"lr"`` axis.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=3000, record=10,
    ...                grid={"lr": [1e-3, 0.4, 2.0], "gamma": [0.9, 1.0]}, fixed={"eps": 1.0}, progress=False)
    >>> limit = rn.analysis.instability_threshold(res.objective, eps=1.0)
    >>> ax = stability_map(res, ax=Figure().subplots(), threshold=limit)
    >>> np.asarray(ax.collections[0].get_array()).reshape(3, 2)   # the codes: 0 converged ... 3 diverged
    array([[2, 2],
           [0, 0],
           [1, 3]], dtype=int8)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['converged', 'orbit', 'stalled', 'diverged', 'theory: lr h = 2 sqrt(eps)']
    """
    if isinstance(smap, SweepResult):
        title = f"{smap.optimizer}, {smap.steps} steps"
        smap = analysis.stability_map(smap)
    elif isinstance(smap, analysis.StabilityMap):
        title = "stability map"
    else:
        raise TypeError(f"smap must be a StabilityMap or a SweepResult, got {type(smap).__name__}")
    if threshold is not None:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.integer, np.floating)):
            raise TypeError(f"threshold must be a real number, got {threshold!r} of type {type(threshold).__name__}")
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
    codes = np.asarray(smap.codes)
    (yname, yvalues), (xname, xvalues), (codes,), chosen = _select_2d(smap.axes, [codes], select, "stability_map")
    yedges, yscale, yticks, ylabels = _heatmap_axis(yvalues)
    xedges, xscale, xticks, xlabels = _heatmap_axis(xvalues)
    if threshold is not None and not any(name == "lr" and labels is None
                                         for name, labels in ((xname, xlabels), (yname, ylabels))):
        raise ValueError(f"threshold needs a numeric 'lr' axis to draw on; the map's axes are {yname!r} and {xname!r}")

    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    labels = tuple(smap.labels)
    cmap = ListedColormap([CLASS_COLORS.get(label, "0.5") for label in labels])
    norm = BoundaryNorm(np.arange(len(labels) + 1) - 0.5, len(labels))
    ax = _axes(ax)
    ax.pcolormesh(xedges, yedges, codes, cmap=cmap, norm=norm, shading="flat", edgecolors="white", linewidth=0.5,
                  label="classes")
    diverged = codes == labels.index("diverged") if "diverged" in labels else np.zeros(codes.shape, bool)
    handles: list[Any] = []
    for k, label in enumerate(labels):
        if not np.any(codes == k):
            continue
        if label == "diverged":
            handles.append(_diverged_patch())
        else:
            handles.append(Patch(facecolor=cmap(k), edgecolor="0.3", linewidth=0.5, label=label))
    if diverged.any():
        _hatch_diverged(ax, xedges, yedges, diverged)
    _grid_frame(ax, (xedges, xscale, xticks, xlabels, xname), (yedges, yscale, yticks, ylabels, yname))
    if threshold is not None:
        draw = ax.axhline if yname == "lr" and ylabels is None else ax.axvline
        handles.append(draw(threshold, color="black", linestyle="--", linewidth=1.5, label=THRESHOLD_LABEL))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    if chosen:
        title += ", " + ", ".join(chosen)
    ax.set_title(title, loc="left")
    return ax


def _decades_per_1000(slope: Any) -> np.ndarray:
    """``-slope * 1000 / ln 10``: the decades ``f - f*`` falls per 1000 steps."""
    return -np.asarray(slope, dtype=np.float64) * 1000.0 / math.log(10.0)


def rate(
    fit: analysis.RateFit,
    values: Any,
    ax: Any = None,
    *,
    xlabel: str,
    label: str | None = None,
    log_x: bool = True,
) -> Any:
    """The speed of linear convergence over a 1-D sweep, with its confidence band.

    The speed is ``-slope * 1000 / ln 10``, the decades by which ``f - f*``
    falls per 1000 steps, from :func:`rmsnum.analysis.fit_rate`; the band is
    its confidence interval. Where no linear phase was found the curve has a gap.

    Parameters
    ----------
    fit : RateFit
        A fit over a 1-D sweep (arrays of shape (n,)).
    values : array_like, shape (n,)
        The swept hyperparameter's values.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None. Call again on the same
        Axes to compare sweeps: each curve gets the next style.
    xlabel : str
        The x axis label: the hyperparameter's name and units.
    label : str, optional
        The curve's legend entry.
    log_x : bool, default True
        Log-scale the x axis (needs positive values).

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        If ``fit`` is not a RateFit, ``xlabel`` not a string, ``log_x`` not a bool.
    ValueError
        If the fit is not over a 1-D sweep, ``values`` does not match it or
        is not finite, or ``log_x`` with values <= 0.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> lrs = np.geomspace(0.01, 0.4, 5)
    >>> res = rn.sweep(rn.SGD, rn.quadratic_2d(), x0=(-5, -2), steps=400, record=1, grid={"lr": lrs},
    ...                progress=False)
    >>> fit = rn.analysis.fit_rate(res)
    >>> ax = rate(fit, lrs, ax=Figure().subplots(), xlabel="lr")
    >>> ax.lines[0].get_ydata().round(1)   # no linear phase at lr 0.01 within 400 steps: a gap
    array([ nan,  4.4, 11.1, 28.1, 72.4])
    >>> (-1000 * np.log((1 - 0.2 * lrs) ** 2) / np.log(10)).round(1)   # theory: the slow coordinate, h = 0.2
    array([ 1.7,  4.4, 11.1, 28.1, 72.4])
    """
    if not isinstance(fit, analysis.RateFit):
        raise TypeError(f"fit must be a RateFit (from rmsnum.analysis.fit_rate), got {type(fit).__name__}")
    if not isinstance(xlabel, str) or not xlabel:
        raise TypeError(f"xlabel must be a non-empty string, got {xlabel!r}")
    if not isinstance(log_x, (bool, np.bool_)):
        raise TypeError(f"log_x must be True or False, got {log_x!r}")
    slope = np.asarray(fit.slope, dtype=np.float64)
    if slope.ndim != 1:
        raise ValueError(f"fit must be over a 1-D sweep (arrays of shape (n,)), got shape {slope.shape}")
    x = np.asarray(values)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"values must be numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if x.shape != slope.shape:
        raise ValueError(f"values must have the fit's shape {slope.shape}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite")
    if log_x and np.any(x <= 0):
        raise ValueError(f"values must be > 0 for log_x=True, got {x.min():.4g}; pass log_x=False")
    ax = _axes(ax)
    k = len(ax.lines)
    style = _series_style(k)
    speed = _decades_per_1000(slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = _decades_per_1000(np.log(np.asarray(fit.rate_high, dtype=np.float64)))
        high = _decades_per_1000(np.log(np.asarray(fit.rate_low, dtype=np.float64)))
    band = np.isfinite(low) & np.isfinite(high)
    ax.fill_between(x, np.where(band, low, 0.0), np.where(band, high, 0.0), where=band, color=style["color"],
                    alpha=0.25, linewidth=0, label=f"{fit.confidence:.0%} interval" if k == 0 else None)
    ax.plot(x, speed, label=label, markersize=5, **style)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("convergence speed\n(decades of f - f* per 1000 steps)")
    if not np.any(np.isfinite(speed)):
        ax.text(0.5, 0.5, "no linear phase found", transform=ax.transAxes, ha="center", va="center")
    if label is not None or k == 0:
        ax.legend()
    return ax


_UNITS = {"lr": "lr (units of x)", "eps": "eps (units of gradient²)", "gamma": "gamma (dimensionless)",
          "momentum": "momentum (dimensionless)"}


def orbit_amplitude(res: SweepResult, ax: Any = None, *, axis: str = "lr") -> Any:
    """The measured amplitude of RMSProp's terminal orbit against the theory, per coordinate.

    Markers: :func:`rmsnum.analysis.limit_cycle` amplitudes of the sweep
    (the distance of the final iterate from the optimum, for configurations
    that end on an orbit). Lines: the theory
    :func:`rmsnum.analysis.orbit_amplitude` ``(lr, h_i, eps)`` of each
    coordinate, with each configuration's ``lr`` and ``eps``, on a dense grid
    when ``axis`` is ``"lr"`` or ``"eps"``. It vanishes where the optimum is
    stable, ``lr h_i <= 2 sqrt(eps)``, and the line drops off the axes there.
    Measured amplitudes below a hundredth of the smallest positive theory
    value (coordinates that converged) are drawn at that floor as hollow
    down-triangles.

    Parameters
    ----------
    res : SweepResult
        A sweep of RMSProp (eps inside the square root, no momentum, not
        centered, no weight decay) on a diagonal Quadratic, run with
        ``record=k``, over the 1-D axis ``axis`` (other axes of length 1).
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None.
    axis : str, default "lr"
        The swept axis, along the x axis.

    Returns
    -------
    matplotlib Axes
        Log-log axes; the amplitude is in units of x.

    Raises
    ------
    TypeError
        If ``res`` is not a SweepResult or ``axis`` not a string.
    ValueError
        If ``axis`` is not a numeric positive axis of the sweep, another axis
        has more than one value, the objective is not a diagonal Quadratic,
        the optimizer not a plain RMSProp with eps inside, or the sweep has
        no loss history.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=2000, record=10,
    ...                grid={"lr": np.geomspace(0.03, 1, 4)}, progress=False)
    >>> ax = orbit_amplitude(res, ax=Figure().subplots())
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    >>> ax.lines[0].get_ydata().round(4)   # coordinate 1 (h = 0.2), measured
    array([0.0141, 0.048 , 0.1553, 0.5   ])
    >>> rn.analysis.orbit_amplitude(res.axes["lr"], 0.2).round(4)   # theory, about lr / 2 for lr h >> sqrt(eps)
    array([0.0141, 0.048 , 0.1553, 0.5   ])
    """
    if not isinstance(res, SweepResult):
        raise TypeError(f"res must be a SweepResult, got {type(res).__name__}")
    if not isinstance(axis, str):
        raise TypeError(f"axis must be the name of a grid axis, got {axis!r}")
    if axis not in res.axes:
        raise ValueError(f"axis must be one of the sweep's axes {list(res.axes)}, got {axis!r}")
    others = {name: len(values) for name, values in res.axes.items() if name != axis and len(values) != 1}
    if others:
        raise ValueError(f"orbit_amplitude needs a 1-D sweep over axis={axis!r}; the other axes must have one value, "
                         f"got {others}")
    x = np.asarray(res.axes[axis])
    if x.ndim != 1 or x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.any(x <= 0):
        raise ValueError(f"axis {axis!r} must hold positive numbers (drawn on a log scale), got {x!r}")
    objective = res.objective
    if not isinstance(objective, Quadratic) or not objective.is_diagonal:
        raise ValueError(f"orbit_amplitude needs a sweep on a diagonal Quadratic, got {objective!r}")
    for k, opt in enumerate(analysis._optimizers(res)):
        if (not isinstance(opt, RMSProp) or not opt.eps_in_sqrt or opt.momentum or opt.centered
                or opt.weight_decay):
            raise ValueError("the orbit theory covers RMSProp with eps inside the square root, without momentum, "
                             f"centering or weight decay; configuration {k} is {opt}")
    cycle = analysis.limit_cycle(res)
    n, d = x.size, objective.dim
    measured = np.moveaxis(cycle.amplitude, list(res.axes).index(axis), 0).reshape(n, d)
    lr = analysis._hyperparameter_grid(res, "lr").reshape(n)
    eps = analysis._hyperparameter_grid(res, "eps").reshape(n)
    h = np.asarray(objective.A, dtype=np.float64)

    if axis in ("lr", "eps"):
        dense = np.unique(np.concatenate([np.geomspace(x.min(), x.max(), 200), x]))
        if axis == "lr":  # the threshold of each coordinate, where the theory drops to 0
            limits = 2 * math.sqrt(eps[0]) / h
            dense = np.unique(np.concatenate([dense, limits[(limits > x.min()) & (limits < x.max())]]))
        theory_x = dense
        dense_lr = dense if axis == "lr" else np.full(dense.size, lr[0])
        dense_eps = dense if axis == "eps" else np.full(dense.size, eps[0])
    else:
        theory_x, dense_lr, dense_eps = x.astype(np.float64), lr, eps
    theory = np.array([[analysis.orbit_amplitude(a, hi, e) for hi in h] for a, e in zip(dense_lr, dense_eps)])
    at_points = np.array([[analysis.orbit_amplitude(a, hi, e) for hi in h] for a, e in zip(lr, eps)])
    positive = at_points[at_points > 0]
    floor = 0.01 * positive.min() if positive.size else None

    ax = _axes(ax)
    below_handle = None
    for i in range(d):
        style = _series_style(i)
        name = f"x{i + 1} (h = {h[i]:.3g})"
        shown = measured[:, i].copy()
        small = np.isfinite(shown) & (shown < floor) if floor is not None else np.zeros(n, bool)
        shown[small] = np.nan
        ax.plot(x, shown, marker=style["marker"], color=style["color"], linestyle="none",
                markersize=max(9 - 2.5 * i, 4), markerfacecolor="none", markeredgewidth=1.5, zorder=3,
                label=f"{name}, measured")
        if small.any():
            below_handle = ax.plot(x[small], np.full(small.sum(), floor), marker="v", markerfacecolor="none",
                                   color=style["color"], linestyle="none", markersize=7,
                                   label=f"measured < {floor:.2g} (converged)")[0]
    for i in range(d):
        style = _series_style(i, marker=False)
        ax.plot(theory_x, theory[:, i], label=f"x{i + 1}, theory", linewidth=1.2, **style)
    ax.set_xscale("log")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(_UNITS.get(axis, axis))
    ax.set_ylabel("orbit amplitude |x_i - x_i*| (units of x)")
    ax.set_title(f"{res.optimizer} on {objective.name}, {res.steps} steps", loc="left")
    handles, texts = ax.get_legend_handles_labels()
    if below_handle is not None:  # one entry for the floor markers
        keep = [k for k, t in enumerate(texts) if not t.startswith("measured <")] + [handles.index(below_handle)]
        handles, texts = [handles[k] for k in keep], [texts[k] for k in keep]
    ax.legend(handles, texts, fontsize="small")
    return ax


def effective_step(traj: Trajectory, ax: Any = None) -> Any:
    """The per-coordinate effective step ``lr / den`` of a trajectory, against the step.

    From :func:`rmsnum.analysis.effective_step`, on a log scale. For a
    diagonal Quadratic, dashed lines mark ``2 / h_i``: the step at which
    coordinate i sits on the period-2 orbit (``lr h_i / den = 2``), where a
    constant-lr RMSProp run ends when its optimum is unstable.

    Parameters
    ----------
    traj : Trajectory
        An unscheduled run (the state is replayed from its iterates).
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        If ``traj`` is not a Trajectory.
    ValueError
        If it has a schedule (see :func:`rmsnum.analysis.effective_step`).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5, -2), steps=300)
    >>> ax = effective_step(traj, ax=Figure().subplots())
    >>> ax.get_yscale(), [line.get_label() for line in ax.lines]
    ('log', ['x1', 'x2', '2 / h1 = 10 (period-2 orbit)', '2 / h2 = 0.5 (period-2 orbit)'])
    """
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj must be a Trajectory, got {type(traj).__name__}")
    step = analysis.effective_step(traj)
    ax = _axes(ax)
    t = np.arange(step.shape[0])
    d = step.shape[1]
    for i in range(d):
        style = _series_style(i, marker=False)
        ax.plot(t, step[:, i], label=f"x{i + 1}", linewidth=1.5, **style)
    objective = traj.objective
    if isinstance(objective, Quadratic) and objective.is_diagonal:
        for i, h in enumerate(np.asarray(objective.A, dtype=np.float64)):
            ax.axhline(2 / h, color=SERIES_COLORS[i % len(SERIES_COLORS)], linestyle=(0, (1, 2)), linewidth=1.2,
                       zorder=1.5, label=f"2 / h{i + 1} = {2 / h:.3g} (period-2 orbit)")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("effective step lr / den (units of x per unit of gradient)")
    opt = traj.optimizer
    ax.set_title(f"{opt.name}, lr {getattr(opt, 'lr', '')}, {traj.steps} steps", loc="left")
    if d <= 2 * len(SERIES_COLORS):
        ax.legend(fontsize="small")
    return ax


def schedule(traj_or_dict: Trajectory | Mapping[str, Any], ax: Any = None) -> Any:
    """The scheduled hyperparameters of a run against the step, one line per name.

    Call again on the same Axes to add another run's schedule: each line gets
    the next style. The y axis is log-scaled while every value drawn on the
    Axes is positive.

    Parameters
    ----------
    traj_or_dict : Trajectory or dict of str to array_like
        A trajectory run with ``schedule=`` (its ``schedule`` attribute is
        drawn), or such a dict: name -> one value per step.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes if None.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        If ``traj_or_dict`` is neither a Trajectory nor a dict, or a value is not numeric.
    ValueError
        If the trajectory has no schedule, the dict is empty, or a value is not a 1-D finite array.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, rmsnum as rn
    >>> from matplotlib.figure import Figure
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5, -2), steps=100,
    ...                    schedule={"lr": lambda t: 0.4 / (t + 1) ** 0.5})
    >>> ax = schedule(traj, ax=Figure().subplots())
    >>> ax = schedule({"gamma": 1 - 1 / (np.arange(100) + 2)}, ax=ax)
    >>> [line.get_label() for line in ax.lines], ax.get_yscale()
    (['lr', 'gamma'], 'log')
    """
    if isinstance(traj_or_dict, Trajectory):
        values = traj_or_dict.schedule
        if not values:
            raise ValueError("traj_or_dict is a Trajectory without a schedule (run simulate(..., schedule=...))")
    elif isinstance(traj_or_dict, Mapping):
        values = traj_or_dict
        if not values:
            raise ValueError("traj_or_dict must map at least one name to per-step values, got an empty dict")
    else:
        raise TypeError(f"traj_or_dict must be a Trajectory or a dict of name -> per-step values, "
                        f"got {type(traj_or_dict).__name__}")
    series = {}
    for name, value in values.items():
        arr = np.asarray(value)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"traj_or_dict[{name!r}] must be numbers, got dtype {arr.dtype}")
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"traj_or_dict[{name!r}] must be a non-empty 1-D array of finite values, "
                             f"got shape {arr.shape}")
        series[str(name)] = arr.astype(np.float64)
    ax = _axes(ax)
    for name, arr in series.items():
        k = len(ax.lines)
        ax.plot(np.arange(arr.size), arr, label=name, linewidth=1.5, **_series_style(k, marker=False))
    positive = all(np.all(np.asarray(line.get_ydata(), dtype=np.float64) > 0) for line in ax.lines)
    ax.set_yscale("log" if positive else "linear")
    ax.set_xlabel("step t")
    ax.set_ylabel("scheduled value (in the hyperparameter's units)")
    ax.legend()
    return ax
