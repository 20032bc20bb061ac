"""The NumPy reference: every rule written as plainly as possible.

This is the oracle the compiled backends are tested against, so it is written
independently of :mod:`rmsnum.rules`: straight from each framework's
definition, with ``if`` statements for the options and ``1 - beta**t`` for the
bias corrections. Arithmetic stays in the arrays' dtype (NumPy's rules for
Python scalars keep float32 as float32).
"""

from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING

from .. import rules
from ..objectives import LinearRegression, Objective, Quadratic

if TYPE_CHECKING:  # the reference reads an optimizer's fields; it never imports the classes
    from ..optimizers import Optimizer, OptimizerState


def _rmsprop(opt: "Optimizer", x, g, st: "OptimizerState", t: int) -> None:
    lr, gamma, eps = opt.lr, opt.gamma, opt.eps
    if opt.weight_decay and not opt.decoupled_weight_decay:
        g = g + opt.weight_decay * x
    if opt.weight_decay and opt.decoupled_weight_decay:
        x -= lr * opt.weight_decay * x
    st.s[...] = gamma * st.s + (1 - gamma) * g * g
    s_hat = st.s
    if opt.centered:
        st.g_avg[...] = gamma * st.g_avg + (1 - gamma) * g
        a_hat = st.g_avg
    if opt.bias_correction:
        correction = x.dtype.type(1 - gamma**t)
        s_hat = s_hat / correction
        if opt.centered:
            a_hat = a_hat / correction
    var = s_hat - a_hat * a_hat if opt.centered else s_hat
    den = np.sqrt(var + eps) if opt.eps_in_sqrt else np.sqrt(var) + eps
    update = g / den
    if opt.momentum == 0:
        x -= lr * update
    elif opt.lr_in_momentum:  # Keras, TF1, optax, MXNet: lr inside the buffer
        st.m[...] = opt.momentum * st.m + lr * update
        x -= lr * update + opt.momentum * st.m if opt.nesterov else st.m
    else:  # PyTorch: buffer of normalised gradients, lr outside
        st.m[...] = opt.momentum * st.m + update
        x -= lr * (update + opt.momentum * st.m) if opt.nesterov else lr * st.m


def _sgd(opt, x, g, st, t) -> None:
    x -= opt.lr * g


def _momentum(opt, x, g, st, t) -> None:
    st.m[...] = opt.beta * st.m + g
    x -= opt.lr * st.m


def _adagrad(opt, x, g, st, t) -> None:
    st.s += g * g
    x -= opt.lr * g / np.sqrt(st.s + opt.eps)


def _adam(opt, x, g, st, t) -> None:
    """As ``torch.optim.Adam``/``AdamW`` document it, or Keras' ``Adam`` with ``eps_hat``."""
    dt = x.dtype.type
    if opt.weight_decay and not opt.decoupled_weight_decay:
        g = g + opt.weight_decay * x
    if opt.weight_decay and opt.decoupled_weight_decay:
        x *= dt(1 - opt.lr * opt.weight_decay)
    st.m[...] = opt.beta1 * st.m + (1 - opt.beta1) * g
    st.s[...] = opt.beta2 * st.s + (1 - opt.beta2) * g * g
    v = st.s
    if opt.amsgrad:
        np.maximum(st.v_max, st.s, out=st.v_max)
        v = st.v_max
    if opt.eps_hat:  # Keras: alpha = lr sqrt(1 - beta2**t) / (1 - beta1**t); x -= m alpha / (sqrt(v) + eps)
        alpha = dt(opt.lr * np.sqrt(1 - opt.beta2**t) / (1 - opt.beta1**t))
        x -= st.m * alpha / (np.sqrt(v) + opt.eps)
        return
    m_hat = st.m / dt(1 - opt.beta1**t)
    v_hat = v / dt(1 - opt.beta2**t)
    x -= opt.lr * m_hat / (np.sqrt(v_hat) + opt.eps)


_RULES = {"rmsprop": _rmsprop, "sgd": _sgd, "momentum": _momentum, "adagrad": _adagrad, "adam": _adam}
"""Each rule of :data:`rmsnum.rules.REGISTRY`, by name, written independently of it."""


def step(opt: "Optimizer", x: np.ndarray, g: np.ndarray, state: "OptimizerState") -> None:
    """One in-place update of ``x`` and ``state`` (``state.t`` counts it)."""
    opt._check_step(x, g, state)
    state.t += 1
    with np.errstate(all="ignore"):
        _RULES[opt.name](opt, x, g, state, state.t)


def gradient(objective: Quadratic | Objective, x: np.ndarray, t: int, seed: int) -> np.ndarray:
    """The gradient in ``x``'s dtype (``A x - b``, or the objective's ``grad``),
    plus the gradient noise of update ``t``."""
    dt = x.dtype.type
    if isinstance(objective, Objective):
        g = objective.grad(x)
    else:
        A, b = objective.A.astype(x.dtype), objective.b.astype(x.dtype)
        g = (A * x if A.ndim == 1 else A @ x) - b
    if objective.noise:
        z = np.array([rules.gaussian(np.uint64(seed), np.uint64(0), np.uint64(t), np.uint64(i))
                      for i in range(x.size)], dtype=x.dtype)
        g = g + dt(objective.noise) * z
    return g


def simulate(opt: Optimizer, objective: Quadratic | Objective, X: np.ndarray, loss: np.ndarray, state: OptimizerState,
             seed: int, per_step: list[Optimizer] | None = None) -> int:
    """Fill ``X`` and ``loss`` from ``X[0]`` step by step; return the diverged step or -1.

    Update t applies ``per_step[t]`` when given (a schedule), else ``opt``.
    """
    return trajectory(opt, objective, X[0], X.shape[0] - 1, state, seed, per_step, 1, X, loss)[0]


def trajectory(opt: Optimizer, objective: Quadratic | Objective, x0: np.ndarray, steps: int, state: OptimizerState,
               seed: int, per_step: list[Optimizer] | None = None, every: int = 1, X: np.ndarray | None = None,
               loss: np.ndarray | None = None) -> tuple[int, np.ndarray, np.floating]:
    """Run ``steps`` updates from ``x0`` (in its dtype), step by step; when not None,
    fill ``X`` and ``loss`` at steps 0, every, 2 every, ... (row t // every).

    Returns the diverged step or -1, the final x (for a diverged run, the first
    iterate whose x or loss was not finite) and the loss there. Update t applies
    ``per_step[t]`` when given (a schedule), else ``opt``.
    """
    dt = x0.dtype.type
    x = x0.copy()
    value = dt(np.nan)
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            if isinstance(objective, Objective):
                value = dt(objective.value(x))
            else:
                A, b = objective.A.astype(x.dtype), objective.b.astype(x.dtype)
                ax = A * x if A.ndim == 1 else A @ x
                value = dt(0.5) * np.dot(x, ax) - np.dot(b, x)
            if t % every == 0:
                if loss is not None:
                    loss[t // every] = value
                if X is not None:
                    X[t // every] = x
            if not (np.all(np.isfinite(x)) and np.isfinite(value)):
                return t, x, value
            if t == steps:
                return -1, x, value
            g = gradient(objective, x, t, seed)
            state.t += 1
            _RULES[opt.name](opt if per_step is None else per_step[t], x, g, state, state.t)
    return -1, x, value


def train(opt: Optimizer, problem: LinearRegression, params: np.ndarray, state: OptimizerState, order: np.ndarray,
          batch: int, every: int, loss: np.ndarray) -> int:
    """Train ``params`` (w..., b) in place, one NumPy minibatch step at a time, over
    the epochs of ``order``; fill ``loss`` with the full-data loss (float64, summed
    over the data) whenever the examples seen reach a multiple of ``every``.
    Return the updates done when a minibatch loss was first not finite, or -1."""
    X, y = problem.X, problem.y
    t = seen = recorded = 0
    with np.errstate(all="ignore"):
        for epoch_order in order:
            for start in range(0, problem.n, batch):
                rows = epoch_order[start:start + batch]
                Xb, yb = X[rows], y[rows]
                residual = Xb @ params[:-1] + params[-1] - yb
                if not np.isfinite(np.sum(residual * residual)):
                    return t
                g = np.append(Xb.T @ residual, np.sum(residual)) / len(rows)
                state.t += 1
                _RULES[opt.name](opt, params, g, state, state.t)
                t += 1
                seen += len(rows)
                if seen % every == 0:
                    loss[recorded] = problem.loss(params[:-1].astype(np.float64), params[-1].astype(np.float64))
                    recorded += 1
    return -1


def chapter_rmsprop(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, order: np.ndarray, lr: float,
                    gamma: float, eps: float, batch_size: int, record_every: int = 200) -> list[float]:
    """The chapter's from-scratch RMSProp training loop (``rmsprop`` with
    ``train_ch11``), transcribed to NumPy as literally as possible: the
    faithfulness oracle of :func:`rmsnum.train` and the baseline of its benchmark.

    ``w`` (d,) and ``b`` (1,) are updated in place; epoch ``e`` visits the rows
    ``order[e]``. Returns the full-data losses recorded every ``record_every``
    examples.
    """
    s_w, s_b = np.zeros_like(w), np.zeros_like(b)
    n, losses = 0, []
    for epoch_order in order:
        for start in range(0, len(y), batch_size):
            rows = epoch_order[start:start + batch_size]
            Xb, yb = X[rows], y[rows]
            y_hat = Xb @ w + b                        # d2l.linreg
            l_grad = (y_hat - yb) / len(rows)         # d/dy_hat of ((y_hat - y)**2 / 2).mean()
            for p, s, grad in ((w, s_w, Xb.T @ l_grad), (b, s_b, np.sum(l_grad, keepdims=True))):
                s[:] = gamma * s + (1 - gamma) * np.square(grad)
                p[:] -= lr * grad / np.sqrt(s + eps)
            n += len(rows)
            if n % record_every == 0:
                losses.append(float(np.mean((X @ w + b - y) ** 2 / 2)))
    return losses
