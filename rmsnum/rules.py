"""The update rules, written once as plain scalar Python functions.

Every backend compiles these same functions: :mod:`rmsnum.backends.cpu` with
``numba.njit`` (serial and ``prange``) and the CUDA backend with
``numba.cuda.jit(device=True)``. They are decorator-free on purpose and must
stay inside the subset of Python that both compilers accept.

The common signature
--------------------
Each rule maps one coordinate to its next value::

    x, s, m, g_avg = rule(x, g, s, m, g_avg, r1, r2, c)

``x`` is the parameter, ``g`` its gradient, ``s`` / ``m`` / ``g_avg`` the
three state slots (mean square, momentum buffer, centered mean; a slot the
rule does not use is passed through unchanged, and a kernel passes ``0`` for
a slot that has no array), ``r1`` and ``r2`` the reciprocal bias-correction
denominators ``1 / (1 - beta**t)`` of the current step (exactly ``1`` when there
is no correction; a product by 1 is exact and far cheaper than a division) and
``c`` a tuple of coefficients in the working dtype, derived from the
user-facing hyperparameters by :mod:`rmsnum.optimizers`.

Why coefficients instead of flags: every option of RMSProp is written as an
arithmetic coefficient that is exactly neutral when the option is off
(``+ 0``, ``* 1``). So one branch-free formula covers every framework's
variant, a block of configurations with different options runs through the
same SIMD lanes or CUDA warp, and no literal constant appears (a literal
would silently promote float32 arithmetic to float64 in Numba).

Bias-correction denominators follow the recurrence
``d_t = beta * d_{t-1} + (1 - beta)`` with ``d_0 = 0`` (so ``d_t = 1 - beta**t``,
the leaky average of ones); :func:`debias` advances it, and the caller passes
``r = 1 / d_t`` once per step.
"""

import math

import numpy as np

RMSPROP_COEFFICIENTS = (
    "wd",  # coupled weight decay: g <- g + wd * x
    "dwd",  # decoupled weight decay: x <- x - dwd * x  (dwd = lr * weight_decay)
    "gamma",  # leaky-average factor of s (and g_avg)
    "omg",  # 1 - gamma
    "omg_c",  # 1 - gamma when centered, else 0 (g_avg then stays 0)
    "eps_in",  # eps added under the square root (or 0)
    "eps_out",  # eps added after the square root (or 0)
    "mu",  # momentum factor (0 without momentum)
    "c_in",  # factor of g in the normalised step p (lr, or 1 for PyTorch-style momentum)
    "c_out",  # factor of the step in the parameter update (1, or lr for PyTorch-style momentum)
    "nest",  # 1 for Nesterov momentum, else 0
    "mu_out",  # mu for Nesterov momentum, else 1
)


def rmsprop(x, g, s, m, g_avg, r1, r2, c):
    """RMSProp with every option of DESIGN.md's table, as one formula.

    With ``c`` unpacked as :data:`RMSPROP_COEFFICIENTS`::

        g      <- g + wd * x                          coupled weight decay
        x      <- x - dwd * x                         decoupled weight decay
        s      <- gamma * s + (1 - gamma) * (g * g)
        g_avg  <- gamma * g_avg + omg_c * g           centered only
        v      <- s * r1 - (g_avg * r1) ** 2          r1 = 1 / (1 - gamma**t) or 1
        p      <- (c_in * g) / (sqrt(v + eps_in) + eps_out)
        m      <- mu * m + p
        x      <- x - c_out * (nest * p + mu_out * m)

    Without momentum the optimizer sets ``c_in = lr, c_out = 1``, so the update
    is ``x - (lr * g) / den``, the order of operations of Keras and of the
    book's from-scratch code.
    """
    wd, dwd, gamma, omg, omg_c, eps_in, eps_out, mu, c_in, c_out, nest, mu_out = c
    g = g + wd * x
    x = x - dwd * x
    s = gamma * s + omg * (g * g)
    g_avg = gamma * g_avg + omg_c * g
    s_hat = s * r1
    a_hat = g_avg * r1
    p = (c_in * g) / (math.sqrt(s_hat - a_hat * a_hat + eps_in) + eps_out)
    m = mu * m + p
    x = x - c_out * (nest * p + mu_out * m)
    return x, s, m, g_avg


def sgd(x, g, s, m, g_avg, r1, r2, c):
    """Gradient descent: ``x <- x - lr * g``; ``c = (lr,)``."""
    (lr,) = c
    return x - lr * g, s, m, g_avg


def momentum(x, g, s, m, g_avg, r1, r2, c):
    """Heavy-ball momentum as the book writes it: ``m <- beta * m + g``;
    ``x <- x - lr * m``; ``c = (lr, beta)``."""
    lr, beta = c
    m = beta * m + g
    return x - lr * m, s, m, g_avg


def adagrad(x, g, s, m, g_avg, r1, r2, c):
    """Adagrad with eps under the square root (the book's form):
    ``s <- s + g * g``; ``x <- x - lr * g / sqrt(s + eps)``; ``c = (lr, eps)``."""
    lr, eps = c
    s = s + g * g
    return x - lr * g / math.sqrt(s + eps), s, m, g_avg


def adam(x, g, s, m, g_avg, r1, r2, c):
    """Adam: ``m`` first moment, ``s`` second moment, bias-corrected by
    ``r1 = 1 / (1 - beta1**t)`` and ``r2 = 1 / (1 - beta2**t)``;
    ``c = (lr, beta1, 1 - beta1, beta2, 1 - beta2, eps)``."""
    lr, beta1, omb1, beta2, omb2, eps = c
    m = beta1 * m + omb1 * g
    s = beta2 * s + omb2 * (g * g)
    x = x - lr * (m * r1) / (math.sqrt(s * r2) + eps)
    return x, s, m, g_avg


def debias(d, beta, one_minus_beta):
    """Advance a bias-correction denominator: ``1 - beta**(t-1)`` -> ``1 - beta**t``.

    ``debias(d, 0, 1)`` stays at 1, which is how "no correction" is spelled.
    """
    return beta * d + one_minus_beta


# Counter-based Gaussian noise: a pure function of (seed, configuration, step,
# coordinate), so serial, parallel and CUDA runs draw identical numbers
# whatever the thread schedule. SplitMix64 finaliser for hashing, Box-Muller
# for the normal deviate.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_KEY_CONFIG = np.uint64(0xD1B54A32D192ED03)
_KEY_STEP = np.uint64(0xABC98388FB8FAC03)
_KEY_COORD = np.uint64(0x8CB92BA72F3D8DD7)
_ONE_U = np.uint64(1)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)


def _mix64(z):
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


def gaussian(seed, config, step, coord):
    """A standard normal deviate (float64) keyed by four non-negative integers."""
    key = _mix64(np.uint64(seed))
    key = _mix64(key ^ (np.uint64(config) * _KEY_CONFIG))
    key = _mix64(key ^ (np.uint64(step) * _KEY_STEP))
    key = _mix64(key ^ (np.uint64(coord) * _KEY_COORD))
    h2 = _mix64(key)
    u1 = (float(key >> _S11) + 1.0) * 1.1102230246251565e-16  # (0, 1]
    u2 = float(h2 >> _S11) * 1.1102230246251565e-16  # [0, 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)
