"""matplotlib figures. Each function takes an optional Axes, draws on it and
returns it; none calls ``show()``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .analysis import leaky_average_weights
from .simulate import Trajectory


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


def loss_curve(traj: Trajectory, ax: Any = None, *, label: str | None = None) -> Any:
    """``log10(f(x_t) - f*)`` against the step; a divergence is marked.

    The logarithm is taken before plotting (rather than a log-scaled axis) so
    that diverging runs whose loss nears the float range still draw.
    """
    ax = _axes(ax)
    gap = np.abs(traj.gap.astype(np.float64))
    with np.errstate(divide="ignore"):
        ax.plot(np.arange(gap.size), np.log10(gap), label=label)
    if traj.diverged:
        ax.axvline(traj.diverged_at, color="0.3", linestyle="--", label=f"diverged at step {traj.diverged_at}")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(f(x) - f*)")
    if label is not None or traj.diverged:
        ax.legend()
    return ax
