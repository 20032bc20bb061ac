"""The update rules, written once as plain scalar Python functions.

Every backend compiles these same functions: :mod:`rmsnum.backends.cpu` with
``numba.njit`` (serial and ``prange``) and the CUDA backend with
``numba.cuda.jit(device=True)``. They are decorator-free on purpose and must
stay inside the subset of Python that both compilers accept.

The common signature
--------------------
Each rule maps one coordinate to its next value::

    x, *slots = rule(x, g, *slots, r1, r2, c)

``x`` is the parameter, ``g`` its gradient, ``slots`` the rule's state slots
in the order its :class:`Rule` entry names them (RMSProp's are ``s, m, g_avg``:
mean square, momentum buffer, centered mean; a rule with no slot returns ``x``
alone). A slot that the optimizer's options leave unused has no array: a
kernel passes ``ZERO`` for it and drops what the rule returns there. ``r1`` and
``r2`` are the reciprocal bias-correction denominators ``1 / (1 - beta**t)`` of
the current step (exactly ``1`` when there is no correction; a product by 1 is
exact and far cheaper than a division) and ``c`` a tuple of coefficients in
the working dtype, derived from the user-facing hyperparameters by
:mod:`rmsnum.optimizers`.

The registry
------------
Each rule is declared once, in :data:`REGISTRY`, by a :class:`Rule`: its
scalar function, its named slots (any number), its coefficient names, which
coefficients are its bias-correction decays, and its effective step size.
The optimizers, every backend, :mod:`rmsnum.kernels`, the analysis, the CLI
and the tests read it; nothing else lists rules or slots.

Why coefficients instead of flags: every option of RMSProp is written as an
arithmetic coefficient that is exactly neutral when the option is off
(``+ 0``, ``* 1``). So one branch-free formula covers every framework's
variant, a block of configurations with different options runs through the
same SIMD lanes or CUDA warp, and no literal constant appears (a literal
would silently promote float32 arithmetic to float64 in Numba).

The gradient's norm
-------------------
A clip of the gradient's norm (Keras' ``clipnorm``) needs the whole array, so no
scalar rule can apply it: every rule's last coefficient, ``g_norm``, is the limit
(HIGHEST when off), and the engines scale the rule's ``gscale`` by
``g_norm / max(|g|, g_norm)`` once per step, before the element updates
(:func:`norm_clipped`). The rules unpack it and leave it.

Bias-correction denominators follow the recurrence
``d_t = beta * d_{t-1} + (1 - beta)`` with ``d_0 = 0`` (so ``d_t = 1 - beta**t``,
the leaky average of ones); :func:`debias` advances it, and the caller passes
``r = 1 / d_t`` once per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._neutral import Neutral

RMSPROP_COEFFICIENTS = (
    "gscale",  # factor of g: MXNet's rescale_grad, negated to maximize (torch), or 1
    "wd",  # coupled weight decay: g <- g + wd * x
    "g_lo",  # lower limit of the clipped gradient (MXNet's clip_gradient, Keras' clipvalue), or -inf
    "g_hi",  # upper limit, or +inf
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
    "x_lo",  # lower limit of the clipped parameter (MXNet's clip_weights), or -inf
    "x_hi",  # upper limit, or +inf
    "g_norm",  # limit of the gradient's norm (Keras' clipnorm), or +inf: applied by the engines (see below)
)


def rmsprop(x, g, s, m, g_avg, r1, r2, c):
    """RMSProp with every option of DESIGN.md's table, as one formula.

    With ``c`` unpacked as :data:`RMSPROP_COEFFICIENTS`::

        g      <- clip(gscale * g + wd * x)           rescale or maximize, coupled weight decay, clip
        x      <- x - dwd * x                         decoupled weight decay
        s      <- gamma * s + (1 - gamma) * (g * g)
        g_avg  <- gamma * g_avg + omg_c * g           centered only
        v      <- s * r1 - (g_avg * r1) ** 2          r1 = 1 / (1 - gamma**t) or 1
        p      <- (c_in * g) / (sqrt(v + eps_in) + eps_out)
        m      <- mu * m + p
        x      <- clip(x - c_out * (nest * p + mu_out * m))      clip_weights

    ``clip(v)`` is ``min(max(v, lo), hi)`` with the limits ``(g_lo, g_hi)`` or
    ``(x_lo, x_hi)``: MXNet clips the rescaled gradient after adding the weight
    decay, and the new weights. Without a clip the limits are the neutral
    ``LOWEST``, ``HIGHEST`` and the clip compiles to nothing.

    Without momentum the optimizer sets ``c_in = lr, c_out = 1``, so the update
    is ``x - (lr * g) / den``, the order of operations of Keras and of the
    book's from-scratch code.
    """
    (gscale, wd, g_lo, g_hi, dwd, gamma, omg, omg_c, eps_in, eps_out, mu, c_in, c_out, nest, mu_out, x_lo, x_hi,
     g_norm) = c
    g = min(max(gscale * g + wd * x, g_lo), g_hi)
    x = x - dwd * x
    s = gamma * s + omg * (g * g)
    g_avg = gamma * g_avg + omg_c * g
    s_hat = s * r1
    a_hat = g_avg * r1
    p = (c_in * g) / (math.sqrt(s_hat - a_hat * a_hat + eps_in) + eps_out)
    m = mu * m + p
    x = min(max(x - c_out * (nest * p + mu_out * m), x_lo), x_hi)
    return x, s, m, g_avg


SGD_COEFFICIENTS = (
    "gscale",  # factor of g: MXNet's rescale_grad, negated to maximize (torch), or 1
    "g_lo",  # lower limit of the clipped gradient (MXNet's clip_gradient), or -inf
    "g_hi",  # upper limit, or +inf
    "wd",  # coupled weight decay
    "lr",
    "g_norm",  # limit of the gradient's norm (Keras' clipnorm), or +inf: applied by the engines (see below)
)


def sgd(x, g, r1, r2, c):
    """Gradient descent: ``g <- clip(gscale * g) + wd * x``; ``x <- x - lr * g``; no slot.

    ``c`` unpacks as :data:`SGD_COEFFICIENTS`; ``clip(v)`` is ``min(max(v, g_lo), g_hi)``,
    before the weight decay as in MXNet's SGD. The book's rule is
    ``(ONE, LOWEST, HIGHEST, ZERO, lr, HIGHEST)``.
    """
    gscale, g_lo, g_hi, wd, lr, g_norm = c
    g = min(max(gscale * g, g_lo), g_hi) + wd * x
    return x - lr * g


MOMENTUM_COEFFICIENTS = SGD_COEFFICIENTS[:-1] + (
    "beta",  # momentum factor
    "nest",  # 1 for Nesterov momentum (torch's SGD(nesterov=True)), else 0
    "beta_out",  # beta for Nesterov momentum, else 1
    "damp",  # torch's dampening, or 0
    "omd",  # 1 - dampening, or 1
    "g_norm",
)


def momentum(x, g, m, r1, r2, c):
    """Heavy-ball momentum as the book writes it, and as ``torch.optim.SGD`` with
    momentum. With ``c`` unpacked as :data:`MOMENTUM_COEFFICIENTS`::

        g  <- clip(gscale * g) + wd * x
        m  <- beta * m + w * g
        x  <- x - lr * (nest * g + beta_out * m)

    The book's rule is ``nest = 0, beta_out = 1``: ``x <- x - lr * m``; Nesterov's
    (torch) ``x <- x - lr * (g + beta * m)``. MXNet's ``mom = beta * mom - lr * g``;
    ``x += mom`` keeps ``-lr * m``.

    The gradient's weight ``w`` is 1 without dampening. torch's dampening damps from
    the second step on (its first step sets the buffer to ``g``): ``w`` is 1 at
    ``t = 1`` and ``1 - dampening`` after. The step count comes from the
    denominators: with dampening the optimizer's decays ``(1, 1, 0, 1)`` make
    ``r1 = 1 / t`` and ``r2 = 1``, so ``damp * max(0, 2 * r1 - r2)`` is ``damp`` at the
    first step and exactly 0 after (``w = omd + damp``, which rounds to exactly 1
    for ``damp`` in [0, 1]). Without, ``damp`` is ZERO and that term compiles to nothing.
    """
    gscale, g_lo, g_hi, wd, lr, beta, nest, beta_out, damp, omd, g_norm = c
    g = min(max(gscale * g, g_lo), g_hi) + wd * x
    m = beta * m + (omd + max(damp - damp, damp * r1 + damp * r1 - damp * r2)) * g
    return x - lr * (nest * g + beta_out * m), m


ADAGRAD_COEFFICIENTS = (
    "gscale",  # factor of g: rescale_grad, negated to maximize (torch), or 1
    "wd",  # coupled weight decay (torch)
    "g_lo",  # lower limit of the clipped gradient (Keras' clipvalue), or -inf
    "g_hi",  # upper limit, or +inf
    "dwd",  # decoupled weight decay x <- x - dwd * x (Keras: dwd = lr * weight_decay)
    "lr",
    "eps_in",  # eps under the square root (the book, Keras), or 0
    "eps_out",  # eps after the square root (torch), or 0
    "g_norm",  # limit of the gradient's norm (Keras' clipnorm), or +inf: applied by the engines (see below)
)


def adagrad(x, g, s, r1, r2, c):
    """Adagrad. With ``c`` unpacked as :data:`ADAGRAD_COEFFICIENTS`::

        g  <- clip(gscale * g + wd * x)
        x  <- x - dwd * x
        s  <- s + g * g
        x  <- x - lr * r1 * g / (sqrt(s + eps_in) + eps_out)

    The book's form (and Keras') has eps under the square root, torch's after it.
    ``r1`` is 1, or with torch's ``lr_decay`` ``1 / (1 + (t - 1) * lr_decay)``: the
    optimizer's decays ``(1, lr_decay, 0, 1)`` from ``d = 1 - lr_decay`` advance it.
    """
    gscale, wd, g_lo, g_hi, dwd, lr, eps_in, eps_out, g_norm = c
    g = min(max(gscale * g + wd * x, g_lo), g_hi)
    x = x - dwd * x
    s = s + g * g
    return x - lr * r1 * g / (math.sqrt(s + eps_in) + eps_out), s


ADAM_COEFFICIENTS = (
    "gscale",  # factor of g: MXNet's rescale_grad, negated to maximize (torch), or 1
    "wd",  # coupled weight decay (torch Adam, MXNet): g <- g + wd * x
    "g_lo",  # lower limit of the clipped gradient (MXNet's clip_gradient, Keras' clipvalue), or -inf
    "g_hi",  # upper limit, or +inf
    "keep",  # decoupled weight decay (torch AdamW, Keras): x <- keep * x, keep = 1 - lr * weight_decay
    "lr",
    "beta1",
    "omb1",  # 1 - beta1
    "beta2",
    "omb2",  # 1 - beta2
    "eps",  # added to sqrt(s * r2) (torch), or 0
    "eps_hat",  # added to sqrt(s) before the bias correction (Keras, TF: the paper's epsilon hat), or 0
    "g_norm",  # limit of the gradient's norm (Keras' clipnorm), or +inf: applied by the engines (see below)
)


def adam(x, g, s, m, v_max, r1, r2, c):
    """Adam, with AMSGrad and weight decay: ``m`` the first moment, ``s`` the
    second, bias-corrected by ``r1 = 1 / (1 - beta1**t)`` and
    ``r2 = 1 / (1 - beta2**t)``. With ``c`` unpacked as :data:`ADAM_COEFFICIENTS`::

        g      <- clip(gscale * g + wd * x)        rescale or maximize, coupled weight decay, clip (MXNet)
        x      <- keep * x                         decoupled weight decay (torch AdamW, Keras)
        m      <- beta1 * m + (1 - beta1) * g
        s      <- beta2 * s + (1 - beta2) * (g * g)
        v_max  <- max(v_max, s)                    AMSGrad (torch's max_exp_avg_sq)
        x      <- x - lr * (m * r1) / (sqrt(v_max * r2) + eps + eps_hat * sqrt(r2))

    Without AMSGrad the slot ``v_max`` has no array: it comes in as ``ZERO``
    and ``max(ZERO, s)`` is ``s`` (s >= 0), so the update divides by ``s``.
    """
    gscale, wd, g_lo, g_hi, keep, lr, beta1, omb1, beta2, omb2, eps, eps_hat, g_norm = c
    g = min(max(gscale * g + wd * x, g_lo), g_hi)
    x = keep * x
    m = beta1 * m + omb1 * g
    s = beta2 * s + omb2 * (g * g)
    v_max = max(v_max, s)
    x = x - lr * (m * r1) / (math.sqrt(v_max * r2) + eps + eps_hat * math.sqrt(r2))
    return x, s, m, v_max


# Effective step sizes: the factor of g of the next update's normalised step,
# lr / den, from a state (NumPy arrays; float64 result, den formed in the
# state's dtype as the rule forms it). ``slots`` maps slot name -> array or
# None; ``r1``, ``r2`` are in the state's dtype; ``c`` are the coefficients in
# float64 (each rounds to the state's dtype as opt.coefficients(dtype) does).

def _rmsprop_step_size(slots, r1, r2, c):
    (gscale, wd, g_lo, g_hi, dwd, gamma, omg, omg_c, eps_in, eps_out, mu, c_in, c_out, nest, mu_out,
     x_lo, x_hi, g_norm) = (float(v) for v in c)
    s, a = slots["s"], slots["g_avg"]
    dt = s.dtype.type
    var = s * dt(r1)
    if a is not None:
        var = var - (a * dt(r1)) * (a * dt(r1))
    den = np.sqrt(var + dt(eps_in)) + dt(eps_out)
    return c_in * c_out / den.astype(np.float64)


def _adagrad_step_size(slots, r1, r2, c):
    gscale, wd, g_lo, g_hi, dwd, lr, eps_in, eps_out, g_norm = (float(v) for v in c)
    s = slots["s"]
    dt = s.dtype.type
    return lr * float(r1) / (np.sqrt(s + dt(eps_in)) + dt(eps_out)).astype(np.float64)


def _adam_step_size(slots, r1, r2, c):
    lr, eps, eps_hat = (float(c[ADAM_COEFFICIENTS.index(name)]) for name in ("lr", "eps", "eps_hat"))
    s = slots["s"] if slots["v_max"] is None else slots["v_max"]
    dt = s.dtype.type
    return lr / (np.sqrt(s * r2) + dt(eps) + dt(eps_hat) * np.sqrt(r2)).astype(np.float64)


def _lr_step_size(slots, r1, r2, c):  # SGD and momentum: lr has one place in both
    return np.float64(float(c[SGD_COEFFICIENTS.index("lr")]))


@dataclass(frozen=True)
class Rule:
    """The declaration of one update rule.

    Attributes
    ----------
    update : callable
        The scalar function ``(x, g, *slots, r1, r2, c) -> (x, *slots)`` (``x``
        alone without slots), plain Python that every backend compiles.
    slots : tuple of str
        The state slots, in the order ``update`` takes and returns them.
    coefficients : tuple of str
        The names of the entries of ``c``.
    decays : tuple of str
        The coefficients ``(beta1, 1 - beta1, beta2, 1 - beta2)`` of the bias
        corrections ``r1``, ``r2``, when the optimizer switches them on; empty
        for a rule that has none.
    step_size : callable
        ``(slots, r1, r2, c) -> lr / den``: the factor of g in the next update's
        normalised step, from a state (NumPy; see :func:`rmsnum.analysis.step_sizes`).
    zero_slots : tuple of str
        The slots that may be kept as arrays of zeros where the option they
        belong to is off, once its coefficients are numbers (0 and 1): the
        rule then gives the same numbers for finite values (``mu * 0 + p`` is
        ``p``, ``gamma * 0 + 0 * g`` is 0), so single runs with and without
        the option share one kernel. A slot whose absence is itself the
        option (AMSGrad's running maximum) is not one of them.
    specialised : tuple of str
        The coefficients whose neutral value a single run keeps (the other
        neutrals become numbers there, so that option sets share one kernel):
        options that are rarely on, whose numbers would cost every run
        something (the gradient's scale; the clip limits, a clip by numbers
        being two NaN-aware compares per element).
    """

    update: Callable
    slots: tuple[str, ...]
    coefficients: tuple[str, ...]
    decays: tuple[str, ...]
    step_size: Callable
    zero_slots: tuple[str, ...] = ()
    specialised: tuple[str, ...] = ("gscale", "g_lo", "g_hi", "g_norm")

    @property
    def name(self) -> str:
        """The scalar function's name, e.g. ``"rmsprop"``."""
        return self.update.__name__


REGISTRY: dict[str, Rule] = {rule.name: rule for rule in (
    Rule(rmsprop, ("s", "m", "g_avg"), RMSPROP_COEFFICIENTS, ("gamma", "omg", "gamma", "omg"), _rmsprop_step_size,
         zero_slots=("m", "g_avg"), specialised=("gscale", "g_lo", "g_hi", "x_lo", "x_hi", "g_norm")),
    Rule(sgd, (), SGD_COEFFICIENTS, (), _lr_step_size),
    Rule(momentum, ("m",), MOMENTUM_COEFFICIENTS, (), _lr_step_size,
         specialised=("gscale", "g_lo", "g_hi", "damp", "omd", "g_norm")),
    Rule(adagrad, ("s",), ADAGRAD_COEFFICIENTS, (), _adagrad_step_size),
    Rule(adam, ("s", "m", "v_max"), ADAM_COEFFICIENTS, ("beta1", "omb1", "beta2", "omb2"), _adam_step_size),
)}
"""Every rule, by name."""


def lookup(update: Callable) -> Rule:
    """The registry entry of a rule's scalar function.

    >>> lookup(adam).slots
    ('s', 'm', 'v_max')
    """
    rule = REGISTRY.get(getattr(update, "__name__", None))
    if rule is None or rule.update is not update:
        raise ValueError(f"{update!r} is not a rule of rmsnum.rules.REGISTRY (rules: {', '.join(REGISTRY)})")
    return rule


def norm_clipped(c, squares):
    """The coefficients ``c`` of a rule for a gradient whose squares sum to ``squares``:
    the gradient's scale ``c[0]`` times ``limit / norm`` where the norm ``sqrt(squares)``
    exceeds ``limit = c[-1]`` (``g_norm``), so that the rule's ``gscale * g`` has norm <=
    limit (``|gscale|`` times); ``c`` itself when ``g_norm`` is HIGHEST (no clip). A
    limit of +inf (a configuration without the clip among ones with it) scales by 1,
    a norm that overflowed to +inf by 0 (as Keras). The engines call it once per step
    and configuration, before the element updates.

    >>> from rmsnum._neutral import ONE, HIGHEST
    >>> norm_clipped((ONE, 2.0), 16.0), norm_clipped((ONE, 2.0), 1.0), norm_clipped((ONE, HIGHEST), 16.0)
    ((0.5, 2.0), (1.0, 2.0), (ONE, HIGHEST))
    """
    limit = c[-1]
    if isinstance(limit, Neutral):
        return c
    norm = math.sqrt(squares)
    return (c[0] * (limit / norm if norm > limit else type(limit)(1)),) + c[1:]


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
