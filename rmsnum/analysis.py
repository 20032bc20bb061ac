"""Analysis helpers (more arrive with the convergence-analysis issue)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as v


def leaky_average_weights(gamma: Any, steps: int = 40) -> np.ndarray:
    """Weights ``(1 - gamma) * gamma**t`` of the gradient from ``t`` steps ago in ``s``.

    Parameters
    ----------
    gamma : float or sequence of float
        Leaky-average factor(s) in [0, 1].
    steps : int, default 40
        Number of weights, t = 0 .. steps - 1.

    Returns
    -------
    numpy.ndarray
        Shape (steps,) for one gamma, (len(gamma), steps) for several.

    Examples
    --------
    >>> leaky_average_weights(0.9, 3)
    array([0.1  , 0.09 , 0.081])
    """
    gammas = np.atleast_1d(np.asarray(gamma, dtype=object))
    values = np.array([v.real("gamma", g, low=0.0, high=1.0) for g in gammas.ravel()])
    steps = v.integer("steps", steps)
    t = np.arange(steps)
    weights = (1 - values[:, None]) * values[:, None] ** t
    return weights[0] if np.ndim(gamma) == 0 else weights
