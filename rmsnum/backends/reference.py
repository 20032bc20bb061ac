"""The NumPy reference: every rule written as plainly as possible.

This is the oracle the compiled backends are tested against, so it is written
independently of :mod:`rmsnum.rules`: straight from each framework's
definition, with ``if`` statements for the options and ``1 - beta**t`` for the
bias corrections. Arithmetic stays in the arrays' dtype (NumPy's rules for
Python scalars keep float32 as float32).

It implements :class:`rmsnum.backends.base.Backend` with the compiled
backends' arguments, but computes from each configuration's hyperparameters
(``hyper``, the optimizer's fields), never from its coefficient table: the rule
function only names the rule and its slots. Each configuration runs in a plain
Python loop of NumPy steps, so it is slow; it is meant for small checks.
"""

from __future__ import annotations

import numpy as np

import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import rules
from .base import done, host_kernel_form, in_order, nothing_missing, nothing_required


NAME = "reference"
"""This backend's name, as ``backend=`` spells it."""

# The parts of the interface (rmsnum.backends.base.Backend) shared by the host backends.
missing, require, kernel_form, pipeline = nothing_missing, nothing_required, host_kernel_form, in_order


def squares(g: np.ndarray) -> np.floating:
    """The sum of the squares of ``g``'s elements, in its dtype."""
    return g.dtype.type(np.sum(g * g))


def _rmsprop(opt, x, g, st, t: int) -> None:
    lr, gamma, eps = opt.lr, opt.gamma, opt.eps
    g = _gradient(opt, x, g)
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
    if opt.clip_weights:  # MXNet: the new weights clipped
        np.clip(x, -opt.clip_weights, opt.clip_weights, out=x)


def _gradient(opt, x, g, clip_before_decay: bool = False):
    """The gradient the update sees: scaled to a norm of at most clip_norm (Keras'
    clipnorm), its sign flipped to maximize (torch), scaled by
    MXNet's ``rescale_grad``, coupled weight decay added, and clipped to
    ``[-clip_gradient, clip_gradient]`` (MXNet, Keras' clipvalue): after the decay
    as MXNet's adaptive kernels, before it as its SGD (``clip_before_decay``)."""
    if opt.clip_norm:  # Keras' clipnorm, on the gradient as given: g * clipnorm / max(|g|, clipnorm)
        limit = x.dtype.type(opt.clip_norm)
        g = g * limit / max(np.sqrt(squares(g)), limit)
    if opt.maximize:
        g = -g
    if opt.rescale_grad is not None:
        g = g * x.dtype.type(opt.rescale_grad)
    clip = opt.clip_gradient
    if clip and clip_before_decay:
        g = np.clip(g, -clip, clip)
    if opt.weight_decay and not getattr(opt, "decoupled_weight_decay", False):
        g = g + opt.weight_decay * x
    if clip and not clip_before_decay:
        g = np.clip(g, -clip, clip)
    return g


def _sgd(opt, x, g, st, t) -> None:
    x -= opt.lr * _gradient(opt, x, g, clip_before_decay=True)


def _momentum(opt, x, g, st, t) -> None:
    """The book's heavy ball, and torch's SGD with momentum (Nesterov: ``g + beta * m``;
    dampening from the second step on, the first setting the buffer to ``g``)."""
    g = _gradient(opt, x, g, clip_before_decay=True)
    if t == 1 or not opt.dampening:
        st.m[...] = opt.beta * st.m + g
    else:
        st.m[...] = opt.beta * st.m + x.dtype.type(1 - opt.dampening) * g
    x -= opt.lr * (g + opt.beta * st.m if opt.nesterov else st.m)


def _adagrad(opt, x, g, st, t) -> None:
    """The book's and Keras' form (eps inside the sqrt), or torch's (eps after it)."""
    g = _gradient(opt, x, g)
    if opt.weight_decay and opt.decoupled_weight_decay:  # Keras: x -= x * wd * lr first
        x -= opt.lr * opt.weight_decay * x
    st.s += g * g
    den = np.sqrt(st.s + opt.eps) if opt.eps_in_sqrt else np.sqrt(st.s) + opt.eps
    lr = x.dtype.type(opt.lr / (1 + (t - 1) * opt.lr_decay))  # torch's lr_decay (0: lr)
    x -= lr * g / den


def _adam(opt, x, g, st, t) -> None:
    """As ``torch.optim.Adam``/``AdamW`` document it, or Keras' ``Adam`` with ``eps_hat``."""
    dt = x.dtype.type
    g = _gradient(opt, x, g)
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


def _fields(hyper: Mapping[str, Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**hyper)


def _lane_state(rule: Callable, S: tuple, index: tuple) -> types.SimpleNamespace:
    """The slots of one configuration as attributes (views of ``S`` at ``index``; None without array)."""
    return types.SimpleNamespace(**{name: None if arr is None else arr[index]
                                    for name, arr in zip(rules.lookup(rule).slots, S)})


def step(rule: Callable, x: np.ndarray, g: np.ndarray, S: tuple, r1: Any, r2: Any, c: tuple, *,
         hyper: Mapping[str, Any] | None = None, t: int = 0) -> None:
    """Update ``t`` (counted from 1) of ``x`` and the slots ``S`` in place, from the
    optimizer fields ``hyper`` (``r1``, ``r2`` and ``c`` are not read)."""
    with np.errstate(all="ignore"):
        _RULES[rules.lookup(rule).name](_fields(hyper), x, g, _lane_state(rule, S, ...), t)


def _value_and_gradient(functions: tuple | None, P: tuple, x: np.ndarray) -> tuple[Any, np.ndarray]:
    """f(x) and its gradient in x's dtype: the quadratic ``P = (A, b)`` written out, or
    the user objective's compiled ``functions`` with its extra arguments ``P[1:]``."""
    dt = x.dtype.type
    if functions is None:
        A, b = P
        ax = A * x if A.ndim == 1 else A @ x
        return dt(0.5) * np.dot(x, ax) - np.dot(b, x), ax - b
    value, grad = functions
    g = np.zeros_like(x)
    grad(x, g, *P[1:])
    return dt(value(x, *P[1:]) + np.sum(x - x)), g  # a non-finite x makes the value NaN, as in the kernels


def gradient_noise(seed: int, t: int, n: int, dtype: Any) -> np.ndarray:
    """The standard normal noise of update ``t`` for ``n`` coordinates, as the kernels draw it."""
    return np.array([rules.gaussian(np.uint64(seed), np.uint64(0), np.uint64(t), np.uint64(i)) for i in range(n)],
                    dtype=dtype)


def run_objective(rule: Callable, functions: tuple | None, x: np.ndarray, S: tuple, d: Any, dec: Any, C: np.ndarray,
                  like: tuple, P: tuple, sigma: float, seeds: Any, fstar: float, tol: np.ndarray, steps: int,
                  every: int, loss_rec: Any, x_rec: Any, final_loss: np.ndarray, diverged: np.ndarray, hit: Any, *,
                  hyper: Sequence | None = None, queue: Any = None) -> Callable[[], None]:
    """Each configuration's run, step by step, with the arguments and outputs of
    :func:`rmsnum.backends.cpu.run_objective`; ``functions`` are the user
    objective's CPU-compiled ``(value, grad)``. ``hyper[k]`` is configuration k's
    optimizer fields, or a sequence of them, one per update (a schedule). The
    bias denominators ``d`` end as ``1 - beta**t`` of the decays ``dec``."""
    blocks, n, w = x.shape
    dt = x.dtype.type
    for blk in range(blocks):
        for j in range(w):
            fields = hyper[blk * w + j]
            per_step = None if isinstance(fields, Mapping) else [_fields(h) for h in fields]
            fields = _fields(fields) if per_step is None else None
            xj, state = x[blk, :, j], _lane_state(rule, S, (blk, slice(None), j))
            seed = None if seeds is None else int(seeds[blk, j])
            t, value = _trajectory(rule, functions, P, xj, state, fields, per_step, dt(sigma), seed, steps, every,
                                   None if loss_rec is None else loss_rec[blk, :, j],
                                   None if x_rec is None else x_rec[blk, :, :, j],
                                   None if hit is None else hit[blk, :, j], tol, dt(fstar))
            final_loss[blk, j], diverged[blk, j] = value, t
            if d is not None:
                done_updates = steps if t < 0 else t
                d[blk, 0, j] = dt(1 - dec[blk, 0, j] ** done_updates)
                d[blk, 1, j] = dt(1 - dec[blk, 2, j] ** done_updates)
    return done


def _trajectory(rule, functions, P, x, state, fields, per_step, sigma, seed, steps, every, loss, X, hit, tol, fstar):
    """One configuration's run (x and the state's slots updated in place);
    returns the diverged step or -1, and the last loss. For a diverged run, x
    is left at the first iterate whose x or loss was not finite."""
    name = rules.lookup(rule).name
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            value, g = _value_and_gradient(functions, P, x)
            if t % every == 0:
                if loss is not None and loss.size:
                    loss[t // every] = value
                if X is not None and X.size:
                    X[t // every] = x
            if not np.isfinite(value):
                return t, value
            if hit is not None:
                for k in range(tol.size):
                    if hit[k] < 0 and value - fstar < tol[k]:
                        hit[k] = t
            if t == steps:
                return -1, value
            if seed is not None:
                g = g + sigma * gradient_noise(seed, t, x.size, x.dtype)
            _RULES[name](fields if per_step is None else per_step[min(t, len(per_step) - 1)], x, g, state, t + 1)
    return -1, value


def train(rule: Callable, p: np.ndarray, S: tuple, d: Any, dec: Any, C: np.ndarray, like: tuple, X: np.ndarray,
          y: np.ndarray, order: np.ndarray, batch: int, every: int, H: np.ndarray, pstar: np.ndarray, fstar: float,
          loss_rec: Any, final_loss: np.ndarray, diverged: np.ndarray, *, count: int | None = None,
          hyper: Sequence | None = None, queue: Any = None) -> Callable[[], Callable[[], None]]:
    """Each configuration trained one NumPy minibatch step at a time, with the
    arguments and outputs of :func:`rmsnum.backends.cpu.train`; the full-data
    loss is summed over the data directly (``mean((X w + b - y)**2) / 2`` in
    float64), not from ``H``, ``pstar`` and ``fstar``."""
    blocks, n, w = p.shape
    configs = blocks * w if count is None else count

    def run() -> Callable[[], None]:
        for k in range(configs):
            blk, j = divmod(k, w)
            t, value = _train_one(rule, _fields(hyper[k]), p[blk, :, j], _lane_state(rule, S, (blk, slice(None), j)),
                                  X, y, order, batch, every, None if loss_rec is None else loss_rec[blk, :, j])
            final_loss[blk, j], diverged[blk, j] = value, t
            if d is not None:
                updates = _updates(order.shape, batch) if t < 0 else t
                d[blk, 0, j] = p.dtype.type(1 - dec[blk, 0, j] ** updates)
                d[blk, 1, j] = p.dtype.type(1 - dec[blk, 2, j] ** updates)
        return done
    return run


def _updates(shape: tuple[int, int], batch: int) -> int:
    epochs, rows = shape
    return epochs * -(-rows // batch)


def _full_data_loss(X: np.ndarray, y: np.ndarray, params: np.ndarray) -> float:
    residual = X.astype(np.float64) @ params[:-1].astype(np.float64) + np.float64(params[-1]) - y.astype(np.float64)
    return 0.5 * np.mean(residual * residual)


def _train_one(rule, fields, params, state, X, y, order, batch, every, loss) -> tuple[int, Any]:
    """Train one configuration's ``params`` (w..., b) in place over the epochs of
    ``order``, recording the full-data loss whenever the examples seen reach a
    multiple of ``every``. Returns the updates done when a minibatch loss was
    first not finite (then that loss) or -1 (then the final full-data loss)."""
    name = rules.lookup(rule).name
    t = seen = recorded = 0
    with np.errstate(all="ignore"):
        for epoch_order in order:
            for start in range(0, order.shape[1], batch):
                rows = epoch_order[start:start + batch]
                Xb, yb = X[rows], y[rows]
                residual = Xb @ params[:-1] + params[-1] - yb
                batch_loss = np.sum(residual * residual)
                if not np.isfinite(batch_loss):
                    return t, batch_loss
                g = np.append(Xb.T @ residual, np.sum(residual)) / params.dtype.type(len(rows))
                t += 1
                _RULES[name](fields, params, g, state, t)
                seen += len(rows)
                if seen % every == 0:
                    if loss is not None:
                        loss[recorded] = _full_data_loss(X, y, params)
                    recorded += 1
    return -1, _full_data_loss(X, y, params)


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
