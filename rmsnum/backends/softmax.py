"""The CPU kernel of softmax-regression training: every epoch and minibatch in one compiled loop.

:func:`train` runs what :func:`rmsnum.classification.train_softmax` asks of
the CPU: multinomial logistic regression trained with minibatches, the
gradient of the mean cross-entropy of each minibatch computed in the kernel
(with a numerically stable log-sum-exp), each update applied by the rule's
element update through :func:`rmsnum.backends.cpu._advance`, the full-data
loss and the accuracy on held-out data recorded every ``every`` updates and at
the end. One template, :func:`_softmax_template`, is instantiated per rule by
:func:`rmsnum.backends.cpu._instantiate` (so every rule and option of the
registry works, in float32 and float64) and cached on disk like the other CPU
kernels.

The parameters are one configuration as a block of one lane: ``p`` (dim, 1)
holds ``W`` (features x classes, row-major) and then ``b``, as
:class:`rmsnum.classification.SoftmaxRegression` lays them out. The matrix
products are loops whose innermost index is contiguous and carries no sum
(minibatch rows for the logits, features for the gradient), so LLVM turns them
into SIMD code without reassociating anything: the results do not depend on
fast-math, and differ from NumPy's BLAS products only by rounding.

Like every backend, this module knows rules and problems, never optimizer
classes or the engine; the caller checks every argument.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable

import numba
import numpy as np

from .._config import JIT_FASTMATH
from . import cpu

_jit = functools.partial(numba.njit, error_model="numpy", fastmath=JIT_FASTMATH)


@_jit
def _gather_rows(X, rows, Xt):
    """``Xt[:, r] = X[rows[r]]`` for the ``rows.size`` rows of a minibatch (Xt: features x width)."""
    for f in range(X.shape[1]):
        xt = Xt[f]
        for r in range(rows.size):
            xt[r] = X[rows[r], f]


@_jit
def _logits(p, Xt, Zt, m, k):
    """``Zt[c, r]`` <- the logit of class c for the r-th of ``m`` gathered rows,
    ``sum_f Xt[f, r] W[f, c] + b[c]``, in p's dtype. The sum over features runs
    in groups of four, ``z + ((x0 w0 + x1 w1) + (x2 w2 + x3 w3))``, group after
    group; the inner loops, over rows, are contiguous and independent (SIMD)."""
    nf = Xt.shape[0]
    for c in range(k):
        zc = Zt[c]
        for r in range(m):
            zc[r] = 0
    head = nf - nf % 4
    for f in range(0, head, 4):
        x0, x1, x2, x3 = Xt[f], Xt[f + 1], Xt[f + 2], Xt[f + 3]
        for c in range(k):
            w0, w1, w2, w3 = p[f * k + c, 0], p[(f + 1) * k + c, 0], p[(f + 2) * k + c, 0], p[(f + 3) * k + c, 0]
            zc = Zt[c]
            for r in range(m):
                zc[r] += (x0[r] * w0 + x1[r] * w1) + (x2[r] * w2 + x3[r] * w3)
    for f in range(head, nf):
        xf = Xt[f]
        for c in range(k):
            w = p[f * k + c, 0]
            zc = Zt[c]
            for r in range(m):
                zc[r] += xf[r] * w
    for c in range(k):
        bc = p[nf * k + c, 0]
        zc = Zt[c]
        for r in range(m):
            zc[r] += bc


@_jit
def _softmax_delta(Zt, labels, rows, m, k, one, size):
    """Turn the logits ``Zt`` of a minibatch into ``(P - Y) / size`` in place (P
    the softmax probabilities, Y the one-hot labels) and return the minibatch's
    mean cross-entropy, in the working dtype; both with the row maximum
    subtracted first, as :meth:`SoftmaxRegression.grad` computes them."""
    total_loss = one - one
    for r in range(m):
        label = labels[rows[r]]
        top = Zt[0, r]
        for c in range(1, k):
            top = max(top, Zt[c, r])
        at_label = Zt[label, r] - top
        total = one - one
        for c in range(k):
            e = np.exp(Zt[c, r] - top)
            Zt[c, r] = e
            total += e
        total_loss += np.log(total) - at_label
        for c in range(k):
            Zt[c, r] = Zt[c, r] / total
        Zt[label, r] = Zt[label, r] - one
        for c in range(k):
            Zt[c, r] = Zt[c, r] / size
    return total_loss / size


@_jit
def _gradient(X, rows, Dt, Gt, g, m, k):
    """``g`` (dim, 1) <- the gradient ``(X_r^T D, sum of the rows of D)`` of the
    minibatch ``rows`` from ``Dt`` (k, m) = D transposed; ``Gt`` (k, features)
    is scratch. The sums over rows run in groups of four, like the features in
    :func:`_logits`; the inner loops, over features, are contiguous and
    independent (SIMD)."""
    nf = X.shape[1]
    for c in range(k):
        gc = Gt[c]
        for f in range(nf):
            gc[f] = 0
    head = m - m % 4
    for r in range(0, head, 4):
        x0, x1, x2, x3 = X[rows[r]], X[rows[r + 1]], X[rows[r + 2]], X[rows[r + 3]]
        for c in range(k):
            d0, d1, d2, d3 = Dt[c, r], Dt[c, r + 1], Dt[c, r + 2], Dt[c, r + 3]
            gc = Gt[c]
            for f in range(nf):
                gc[f] += (d0 * x0[f] + d1 * x1[f]) + (d2 * x2[f] + d3 * x3[f])
    for r in range(head, m):
        xr = X[rows[r]]
        for c in range(k):
            dcr = Dt[c, r]
            gc = Gt[c]
            for f in range(nf):
                gc[f] += dcr * xr[f]
    for f in range(nf):
        for c in range(k):
            g[f * k + c, 0] = Gt[c, f]
    for c in range(k):
        acc = Dt[c, 0]
        for r in range(1, m):
            acc += Dt[c, r]
        g[nf * k + c, 0] = acc


@_jit
def _score(p, X, labels, index, Xt, Zt, k):
    """``(summed cross-entropy, correct predictions)`` over every row of ``X``:
    the logits in the working dtype, in chunks of Xt's width; the log-sum-exp
    (row maximum subtracted) and the sum in float64. A prediction is the first
    class with the largest logit (a NaN counts as largest, as in ``numpy.argmax``)."""
    n = X.shape[0]
    width = Xt.shape[1]
    loss = 0.0
    correct = 0
    for start in range(0, n, width):
        stop = min(start + width, n)
        rows = index[start:stop]
        m = stop - start
        _gather_rows(X, rows, Xt)
        _logits(p, Xt, Zt, m, k)
        for r in range(m):
            label = labels[rows[r]]
            top = float(Zt[0, r])
            best = 0
            for c in range(1, k):
                z = Zt[c, r]
                if z > Zt[best, r] or (math.isnan(z) and not math.isnan(Zt[best, r])):
                    best = c
                top = max(top, float(z))
            total = 0.0
            for c in range(k):
                total += math.exp(float(Zt[c, r]) - top)
            loss += top + math.log(total) - float(Zt[label, r])
            correct += best == label
    return loss, correct


@_jit
def _clock():
    """Seconds of ``time.perf_counter``, read from compiled code."""
    with numba.objmode(now="float64"):
        now = time.perf_counter()
    return now


def _softmax_template(p, S, d, dec, C, like, one, X, labels, order, batch, batch_size, last_size, every, TX,
                      tlabels, loss_rec, acc_rec, steps_rec, counts, seconds):
    """Minibatch training of a softmax regression, one configuration (one lane).

    ``p`` (dim, 1) holds the parameters (W row-major, then b) and ends with
    the final ones; ``S`` the state slots (dim, 1) (None for a slot without
    array), ``d`` (2, 1) the bias denominators with decays ``dec`` (4, 1), or
    both None, ``C`` (k, 1) the coefficients that are not ZERO/ONE in
    ``like``, as for :func:`rmsnum.backends.cpu._advance`. Epoch ``e`` visits
    the rows ``order[e]`` of ``X`` (n, features) with class indices ``labels``
    in minibatches of ``batch`` rows (the last one may be smaller);
    ``batch_size`` and ``last_size`` are the two sizes in the working dtype.

    A minibatch whose loss is not finite stops the run before its update.
    After every ``every``-th update and at the end (unless that point is
    recorded already), row ``i`` of ``loss_rec`` (float64) gets the full-data
    mean cross-entropy, of ``acc_rec`` the accuracy on ``TX``, ``tlabels``
    (left as is when they have no rows), of ``steps_rec`` the updates done; a
    recorded loss that is not finite stops the run. ``counts`` gets (updates
    done, updates done at the divergence or -1, points recorded) and
    ``seconds[0]`` the time spent on the recorded points.
    """
    n, nf = X.shape
    k = p.shape[0] // (nf + 1)
    epochs = order.shape[0]
    width = max(batch, 64)  # minibatches use the first columns; the recorded points all of them
    Xt = np.empty((nf, width), p.dtype)
    Zt = np.empty((k, width), p.dtype)
    Gt = np.empty((k, nf), p.dtype)
    g = np.empty_like(p)
    r1 = np.empty(1, p.dtype)
    r2 = np.empty(1, p.dtype)
    index = np.arange(max(n, TX.shape[0]))
    done = 0
    diverged = -1
    rec = 0
    spent = 0.0
    for e in range(epochs):
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            m = stop - start
            rows = order[e, start:stop]
            _gather_rows(X, rows, Xt)
            _logits(p, Xt, Zt, m, k)
            size = batch_size if m == batch else last_size
            if not math.isfinite(_softmax_delta(Zt, labels, rows, m, k, one, size)):
                diverged = done
                break
            _gradient(X, rows, Zt, Gt, g, m, k)
            _advance(p, g, S, d, dec, C, like, r1, r2, one)  # noqa: F821 - bound per rule by _instantiate
            done += 1
            if done % every == 0:
                began = _clock()
                finite = _record(p, X, labels, TX, tlabels, index, Xt, Zt, k, done, rec, loss_rec, acc_rec,
                                 steps_rec)
                rec += 1
                spent += _clock() - began
                if not finite:
                    diverged = done
                    break
        if diverged >= 0:
            break
    if rec == 0 or steps_rec[rec - 1] != done:
        began = _clock()
        finite = _record(p, X, labels, TX, tlabels, index, Xt, Zt, k, done, rec, loss_rec, acc_rec, steps_rec)
        rec += 1
        spent += _clock() - began
        if not finite and diverged < 0:
            diverged = done
    counts[0] = done
    counts[1] = diverged
    counts[2] = rec
    seconds[0] = spent


@_jit
def _record(p, X, labels, TX, tlabels, index, Xt, Zt, k, done, rec, loss_rec, acc_rec, steps_rec):
    """Record point ``rec`` (after ``done`` updates); return whether its loss is finite."""
    loss, _ = _score(p, X, labels, index, Xt, Zt, k)
    loss_rec[rec] = loss / X.shape[0]
    steps_rec[rec] = done
    if TX.shape[0]:
        _, correct = _score(p, TX, tlabels, index, Xt, Zt, k)
        acc_rec[rec] = correct / TX.shape[0]
    return math.isfinite(loss_rec[rec])


@functools.cache
def _kernel(rule: Callable) -> Callable:
    """The training kernel of ``rule`` (one lane, any dimension), cached on disk."""
    return cpu._instantiate(_softmax_template, rule)


def record_points(n: int, batch: int, epochs: int, every: int) -> int:
    """The most points a run records: every ``every``-th update and the end.

    >>> record_points(30, 4, 2, 3)  # 16 updates: 3, 6, ..., 15, then 16
    6
    """
    steps = epochs * -(-n // batch)
    return steps // every + 1


def train(rule: Callable, p: np.ndarray, S: tuple, d: np.ndarray | None, dec: np.ndarray | None, C: np.ndarray,
          like: tuple, X: np.ndarray, labels: np.ndarray, order: np.ndarray, batch: int, every: int,
          TX: np.ndarray, tlabels: np.ndarray, loss_rec: np.ndarray, acc_rec: np.ndarray, steps_rec: np.ndarray,
          counts: np.ndarray, seconds: np.ndarray) -> Callable[[], None]:
    """Train a softmax regression with ``rule``; see :func:`_softmax_template`.

    Every array is C-contiguous; ``p``, the slots, ``d``, ``dec``, ``C``, ``X``
    and ``TX`` in the working dtype, ``labels``, ``tlabels``, ``order``,
    ``steps_rec`` and ``counts`` (3,) int64, ``loss_rec``, ``acc_rec`` and
    ``seconds`` (1,) float64, with room for :func:`record_points` points; all
    checked by the caller. Returns a function that runs the kernel, compiled
    (or loaded from the disk cache) beforehand, so that callers can time the
    training alone.

    Examples
    --------
    Two classes, one feature, RMSProp's rule with lr 0.1, gamma 0.9 and eps
    1e-6 inside the root (its coefficients, as the optimizer gives them):

    >>> import numpy as np
    >>> from rmsnum.optimizers import RMSProp
    >>> opt = RMSProp(lr=0.1)
    >>> X, labels = np.array([[1.0], [-1.0]]), np.array([0, 1])
    >>> p, s = np.zeros((4, 1)), np.zeros((4, 1))
    >>> C, like = cpu.coefficient_table([opt.coefficients(X.dtype)], X.dtype)
    >>> S = tuple(s if name == "s" else None for name in opt.spec.slots)
    >>> loss, acc, steps = np.zeros(3), np.zeros(3), np.zeros(3, np.int64)
    >>> counts, seconds = np.zeros(3, np.int64), np.zeros(1)
    >>> run = train(opt.rule, p, S, None, None, C, like, X, labels, np.array([[0, 1], [1, 0]]), 2, 1,
    ...             X, labels, loss, acc, steps, counts, seconds)
    >>> run()
    >>> counts.tolist(), steps.tolist(), acc.tolist()
    ([2, -1, 2], [1, 2, 0], [1.0, 1.0, 0.0])
    >>> bool(loss[1] < loss[0] < np.log(2))
    True
    """
    dt = p.dtype.type
    rows = order.shape[1]
    C, like = cpu._numbers_only(rule, C, like)  # one kernel per rule, slot pattern and dtype
    args = (p, S, d, dec, C, like, dt(1), X, labels, order, batch, dt(batch),
            dt(rows - (-(-rows // batch) - 1) * batch), every, TX, tlabels, loss_rec, acc_rec, steps_rec, counts,
            seconds)
    # The compiled entry point skips the dispatcher's typing of the arguments on the call.
    entry = _kernel(rule).compile(tuple(numba.typeof(arg) for arg in args))
    return lambda: entry(*args)
