"""matplotlib figures. Each function takes an optional Axes, draws on it and
returns it; none calls ``show()``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .analysis import leaky_average_weights
from .simulate import Trajectory
from .sweep import SweepResult
from .training import TrainResult

DIVERGED_COLOR = "#d62728"
"""Hatch colour of diverged cells in :func:`sweep_heatmap` (drawn over white, so it reads in greyscale too)."""


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def weights(gammas: Sequence[float] = (0.95, 0.9, 0.8, 0.7), steps: int = 40, ax: Any = None) -> Any:
    """The chapter's figure of the leaky-average weights ``(1 - gamma) gamma**t``.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = weights()
    >>> len(ax.lines)
    4
    """
    ax = _axes(ax)
    t = np.arange(steps)
    for gamma, w in zip(gammas, leaky_average_weights(list(gammas), steps)):
        ax.plot(t, w, label=f"gamma = {gamma:.2f}")
    ax.set_xlabel("time (steps ago)")
    ax.set_ylabel("weight of the squared gradient")
    ax.legend()
    return ax


def trace_2d(traj: Trajectory, ax: Any = None, *, margin: float = 1.0, resolution: int = 200) -> Any:
    """A 2-D trajectory drawn over the contours of its objective (the chapter's ``show_trace_2d``)."""
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
        ax.plot(run.loss_epochs, run.loss_curve, label=label)
        ax.axhline(run.problem.f_star, color="0.4", linestyle=":", linewidth=1,
                   label=f"least-squares optimum {run.problem.f_star:.4f}")
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
    diverged = res.diverged
    axes = dict(res.axes)

    chosen = []
    if select:
        if not isinstance(select, dict):
            raise TypeError(f"select must be a dict of axis name -> index, got {select!r}")
        index: list[Any] = []
        for name, values in res.axes.items():
            if name not in select:
                index.append(slice(None))
                continue
            i = select[name]
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not -len(values) <= i < len(values):
                raise ValueError(f"select[{name!r}] must be an index in [0, {len(values)}), got {i!r}")
            index.append(int(i))
            chosen.append(f"{name} = {_format_value(values[i])}")
            del axes[name]
        unknown = set(select) - set(res.axes)
        if unknown:
            raise ValueError(f"select names unknown axes {sorted(unknown)}; the result's axes are {list(res.dims)}")
        data, diverged = data[tuple(index)], diverged[tuple(index)]

    if len(axes) != 2:
        names = ", ".join(axes)
        hint = ""
        if len(axes) > 2:
            extra = list(axes)[2:]
            hint = ("; select a 2-axis slice, e.g. select={" + ", ".join(f"{name!r}: 0" for name in extra) + "}")
        raise ValueError(f"sweep_heatmap needs exactly 2 grid axes, the result has {len(axes)} ({names}){hint}")

    (yname, yvalues), (xname, xvalues) = axes.items()
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
        import matplotlib as mpl
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        marks = np.ma.masked_array(np.ones(diverged.shape), mask=~diverged)
        with mpl.rc_context({"hatch.color": DIVERGED_COLOR}):
            ax.pcolor(xedges, yedges, marks, cmap=ListedColormap(["white"]), hatch="xxx",
                      edgecolors=DIVERGED_COLOR, linewidth=0.0, label="diverged")
        handle = Patch(facecolor="white", edgecolor=DIVERGED_COLOR, hatch="xxx", label="diverged")
        ax.legend(handles=[handle], loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, borderaxespad=0.2)

    for axis, scale, ticks, labels, name in ((ax.xaxis, xscale, xticks, xlabels, xname),
                                             (ax.yaxis, yscale, yticks, ylabels, yname)):
        set_scale = ax.set_xscale if axis is ax.xaxis else ax.set_yscale
        set_scale(scale)
        if labels is not None:
            axis.set_ticks(ticks, labels)
        elif len(ticks) <= 12:
            axis.set_ticks(ticks, [_format_value(t) for t in ticks])
            axis.set_ticks([], minor=True)
        axis.set_label_text(name)
    ax.set_xlim(xedges[0], xedges[-1])
    ax.set_ylim(yedges[0], yedges[-1])
    title = f"{res.optimizer}, {res.steps} steps"
    if chosen:
        title += ", " + ", ".join(chosen)
    ax.set_title(title, loc="left")
    return ax
