"""Each RMSProp preset against the framework it names.

Two kinds of test:

* hand-worked first steps, from each framework's documented formulas, that need
  no framework (they always run);
* trajectories of 150 steps on a noisy diagonal quadratic, compared with the
  framework itself (PyTorch, Keras 3, optax; TF1 and MXNet if present). Each
  group skips on its own when its framework is not importable, so the test
  extra does not depend on any of them.

Both sides see the same gradients: ``gradient(x, t)`` is evaluated on rmsnum's
own ``x`` for rmsnum and on the framework's parameter for the framework.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from frameworks import framework, jax_precision, keras_precision
from oracle import reference_step

import rmsnum as rn

# --- the problem: f(x) = sum(a x**2 / 2 - b x), plus fixed per-step noise ------

CURVATURE = np.array([0.2, 1.0, 4.0, 0.5, 2.0, 8.0])
TARGET = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.25])
X0 = np.array([-5.0, 2.0, 1.5, -0.5, 4.0, -3.0])
STEPS = 150
NOISE = np.random.default_rng(20240617).standard_normal((STEPS, X0.size))

# Relative tolerance per dtype; the absolute floor is RTOL * max|x| over the run.
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def gradient(x: np.ndarray, t: int) -> np.ndarray:
    """The gradient at ``x`` plus the noise of step ``t``, computed in float64, returned in x's dtype."""
    return (CURVATURE * np.asarray(x, np.float64) - TARGET + NOISE[t]).astype(x.dtype)


def rmsnum_trajectory(opt: rn.RMSProp, dtype) -> np.ndarray:
    """Iterates x_0 .. x_STEPS of rmsnum's ``opt`` from X0, shape (STEPS + 1, n)."""
    x = X0.astype(dtype)
    state = opt.init(x)
    out = [x.copy()]
    for t in range(STEPS):
        opt.step(x, gradient(x, t), state)
        out.append(x.copy())
    return np.array(out)


def framework_trajectory(step, read, dtype) -> np.ndarray:
    """The same for a framework: ``step(g)`` applies one update, ``read()`` returns x as NumPy."""
    out = [read()]
    for t in range(STEPS):
        step(gradient(out[-1], t))
        out.append(read())
    got = np.array(out)
    assert got.dtype == dtype, f"the framework computed in {got.dtype}, not {np.dtype(dtype)}"
    return got


def assert_same_trajectory(got: np.ndarray, want: np.ndarray, dtype) -> None:
    rtol = RTOL[dtype]
    floor = rtol * np.abs(want).max()
    diff = np.abs(got.astype(np.float64) - want)
    worst = float((diff / np.maximum(np.abs(want), np.abs(want).max() * 1e-3)).max())
    np.testing.assert_allclose(
        got, want, rtol=rtol, atol=floor,
        err_msg=f"max relative difference {worst:.3g} (dtype {np.dtype(dtype).name})",
    )


def compare(preset, framework_run, kwargs: dict, dtype) -> None:
    """rmsnum's ``preset(**kwargs)`` against ``framework_run(kwargs, dtype)``."""
    want = framework_run(kwargs, dtype)
    got = rmsnum_trajectory(preset(**kwargs), dtype)
    assert_same_trajectory(got, want, dtype)


# --- one helper per framework: the framework's own trajectory ----------------


# Each framework as ``make(x0) -> (step, read, handle)``: a fresh optimizer from x0, ``step(g)``
# applies one update, ``read()`` returns x as NumPy and ``handle`` is what rmsnum.interop takes.


def torch_maker(optimizer: str, kwargs: dict):
    torch = framework("torch")

    def make(x0):
        p = torch.nn.Parameter(torch.tensor(x0))
        opt = getattr(torch.optim, optimizer)([p], **kwargs)

        def step(g):
            p.grad = torch.from_numpy(g)
            opt.step()

        return step, lambda: p.detach().numpy().copy(), (opt, p)

    return make


def keras_maker(keras, optimizer: str, kwargs: dict, dtype):
    """Inside :func:`frameworks.keras_precision` of ``dtype``."""
    def make(x0):
        var = keras.Variable(x0, dtype=np.dtype(dtype).name)
        opt = getattr(keras.optimizers, optimizer)(**kwargs)

        def step(g):
            opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])

        return step, lambda: keras.ops.convert_to_numpy(var.value).copy(), (opt, var)

    return make


def optax_maker(transform: str, kwargs: dict):
    """Inside :func:`frameworks.jax_precision` of x0's dtype; the handle is ``{"x": params, "state": opt_state}``."""
    jax = framework("jax")
    optax = framework("optax")
    tx = getattr(optax, transform)(**kwargs)

    @jax.jit
    def update(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    def make(x0):
        box = {"x": jax.numpy.asarray(x0)}
        box["state"] = tx.init(box["x"])

        def step(g):
            box["x"], box["state"] = update(box["x"], box["state"], jax.numpy.asarray(g))

        return step, lambda: np.array(box["x"]), box

    return make


def torch_run(kwargs: dict, dtype, optimizer: str = "RMSprop") -> np.ndarray:
    step, read, _ = torch_maker(optimizer, kwargs)(X0.astype(dtype))
    return framework_trajectory(step, read, dtype)


def keras_run(kwargs: dict, dtype, optimizer: str = "RMSprop") -> np.ndarray:
    with keras_precision(dtype) as keras:
        step, read, _ = keras_maker(keras, optimizer, kwargs, dtype)(X0.astype(dtype))
        return framework_trajectory(step, read, dtype)


def optax_run(kwargs: dict, dtype, transform: str = "rmsprop") -> np.ndarray:
    with jax_precision(dtype):
        step, read, _ = optax_maker(transform, kwargs)(X0.astype(dtype))
        return framework_trajectory(step, read, dtype)


def tf1_run(kwargs: dict, dtype) -> np.ndarray:  # not exercised where TensorFlow is absent
    tf = pytest.importorskip("tensorflow")
    var = tf.Variable(X0.astype(dtype))
    opt = tf.compat.v1.train.RMSPropOptimizer(**kwargs)

    def step(g):
        opt.apply_gradients([(tf.constant(g), var)])

    return framework_trajectory(step, lambda: var.numpy().copy(), dtype)


def mxnet_run(kwargs: dict, dtype) -> np.ndarray:  # not exercised where MXNet is absent
    mx = pytest.importorskip("mxnet")
    w = mx.nd.array(X0, dtype=dtype)
    opt = mx.optimizer.RMSProp(**kwargs)
    state = opt.create_state(0, w)

    def step(g):
        opt.update(0, w, mx.nd.array(g, dtype=dtype), state)

    return framework_trajectory(step, lambda: w.asnumpy().copy(), dtype)


# --- the tables: preset keyword arguments, passed unchanged to both sides ----

TORCH_CASES = [
    dict(lr=0.02),
    dict(lr=0.02, alpha=0.9, eps=1e-6),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.02, centered=True),
    dict(lr=0.02, weight_decay=0.1),
    dict(lr=0.01, alpha=0.95, eps=1e-4, weight_decay=0.05, momentum=0.8, centered=True),
]
KERAS_CASES = [
    dict(learning_rate=0.02),
    dict(learning_rate=0.02, clipvalue=0.5),
    dict(learning_rate=0.01, momentum=0.9, weight_decay=0.1, clipvalue=1.0),
    dict(learning_rate=0.02, rho=0.8, epsilon=1e-5),
    dict(learning_rate=0.01, momentum=0.9),
    dict(learning_rate=0.02, centered=True),
    dict(learning_rate=0.02, weight_decay=0.1),
    dict(learning_rate=0.01, rho=0.95, momentum=0.8, centered=True, weight_decay=0.05),
    # the norm clips: the gradient's norm is ~10 at first and ~2.5 (the noise) later, so that the clip is on,
    # then now and then; Keras forms g * clipnorm / max(|g|, clipnorm), rmsnum g * (clipnorm / max(...)):
    # one rounding apart
    dict(learning_rate=0.02, momentum=0.5, clipnorm=3.0),
    dict(learning_rate=0.02, centered=True, weight_decay=0.05, global_clipnorm=2.0),
]
OPTAX_CASES = [
    dict(learning_rate=0.02),
    dict(learning_rate=0.02, decay=0.8, eps=1e-5, eps_in_sqrt=False),
    dict(learning_rate=0.02, initial_scale=1.0),
    dict(learning_rate=0.01, momentum=0.9),
    dict(learning_rate=0.01, momentum=0.9, nesterov=True),
    dict(learning_rate=0.02, centered=True),
    dict(learning_rate=0.02, bias_correction=True),
    # initial_scale > 0 here: centered + bias_correction from s0 = 0 has s_hat - g_avg_hat**2 = 0
    # exactly at t = 1, so the first step is lr * g / sqrt(eps + rounding) on both sides.
    dict(learning_rate=0.01, decay=0.95, initial_scale=0.5, centered=True, momentum=0.8, nesterov=True,
         bias_correction=True),
]
TF1_CASES = [
    dict(learning_rate=0.02),
    dict(learning_rate=0.02, epsilon=0.0),
    dict(learning_rate=0.01, decay=0.95, momentum=0.9, centered=True),
]
MXNET_CASES = [
    dict(learning_rate=0.02, wd=0.1),
    dict(learning_rate=0.01, gamma1=0.95, gamma2=0.8, centered=True),
]

BOTH = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
FLOAT32 = pytest.mark.parametrize("dtype", [np.float32], ids=["float32"])
# The comparisons with torch, Keras 3 and optax: .ci/run runs them with the frameworks extra installed
# and RMSNUM_FRAMEWORKS=required, where none may skip (see frameworks.py).
FRAMEWORKS = pytest.mark.frameworks


def _id(kwargs: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in kwargs.items())


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("kwargs", TORCH_CASES, ids=_id)
def test_torch_matches_torch_optim_rmsprop(kwargs, dtype):
    compare(rn.RMSProp.torch, torch_run, kwargs, dtype)


@FRAMEWORKS
@BOTH  # float64: Keras' floatx (its learning rate's dtype) float64, and jax's x64
@pytest.mark.parametrize("kwargs", KERAS_CASES, ids=_id)
def test_keras_matches_keras_optimizers_rmsprop(kwargs, dtype):
    compare(rn.RMSProp.keras, keras_run, kwargs, dtype)


# Adam, AMSGrad and weight decay (coupled in Adam, decoupled in AdamW). torch computes
# exp_avg.lerp_(g, 1 - beta1) and divides by sqrt(v) / sqrt(1 - beta2**t) + eps; rmsnum forms
# beta1 m + (1 - beta1) g and sqrt(v / (1 - beta2**t)) + eps: the same numbers up to rounding,
# within the tolerances above over the 150 steps.
ADAM_TORCH_CASES = [
    ("Adam", rn.Adam.torch, dict(lr=0.05)),
    ("Adam", rn.Adam.torch, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ("Adam", rn.Adam.torch, dict(lr=0.05, weight_decay=0.1)),
    ("Adam", rn.Adam.torch, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("AdamW", rn.AdamW.torch, dict(lr=0.05)),
    ("AdamW", rn.AdamW.torch, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
]
# maximize ascends f, so these runs grow; torch's order: the sign first, then weight decay
MAXIMIZE_TORCH_CASES = [
    ("RMSprop", rn.RMSProp.torch, dict(lr=0.01, maximize=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", rn.Adam.torch, dict(lr=0.01, maximize=True, weight_decay=0.1, amsgrad=True)),
    ("AdamW", rn.AdamW.torch, dict(lr=0.01, maximize=True)),
    ("SGD", rn.SGD.torch, dict(lr=0.01, maximize=True, weight_decay=0.1)),
    ("Adagrad", rn.Adagrad.torch, dict(lr=0.05, maximize=True)),
]
# torch's SGD (plain, momentum, Nesterov, coupled weight decay) and Adagrad (eps after the sqrt,
# the initial accumulator, coupled weight decay). torch forms Adagrad's step as lr * (g / den) and
# rmsnum as (lr * g) / den: one rounding apart per step, well inside the tolerances.
SGD_ADAGRAD_TORCH_CASES = [
    ("SGD", rn.SGD.torch, dict(lr=0.05)),
    ("SGD", rn.SGD.torch, dict(lr=0.05, weight_decay=0.1)),
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.9)),
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05)),
    # dampening: torch's first step sets the buffer to g, the later ones add (1 - dampening) * g
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.5, dampening=1.0)),
    ("Adagrad", rn.Adagrad.torch, dict(lr=0.3)),
    ("Adagrad", rn.Adagrad.torch, dict(lr=0.3, eps=1e-4, initial_accumulator_value=0.5, weight_decay=0.1)),
    # lr_decay: torch's lr / (1 + (t - 1) lr_decay) in float64 Python; rmsnum's denominator adds lr_decay per
    # step in the working dtype: well inside the tolerances over 150 steps
    ("Adagrad", rn.Adagrad.torch, dict(lr=0.3, lr_decay=0.05)),
]
ADAGRAD_KERAS_CASES = [
    dict(learning_rate=0.3),
    dict(learning_rate=0.3, clipvalue=0.5),
    dict(learning_rate=0.3, initial_accumulator_value=0.0, epsilon=1e-3, weight_decay=0.1),
    dict(learning_rate=0.3, clipnorm=3.0),
    dict(learning_rate=0.3, weight_decay=0.1, global_clipnorm=2.0),
]
ADAM_OPTAX_CASES = [
    dict(learning_rate=0.05),
    dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-6),
]
ADAM_KERAS_CASES = [
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05)),
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05, beta_1=0.8, epsilon=1e-4, amsgrad=True, weight_decay=0.1)),
    ("AdamW", rn.AdamW.keras, dict(learning_rate=0.05, weight_decay=0.3, amsgrad=True)),
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05, clipvalue=0.5)),
    ("AdamW", rn.AdamW.keras, dict(learning_rate=0.05, weight_decay=0.3, clipvalue=1.0)),
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05, amsgrad=True, clipnorm=3.0)),
    ("AdamW", rn.AdamW.keras, dict(learning_rate=0.05, weight_decay=0.3, global_clipnorm=2.0)),
]


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("name,preset,kwargs", ADAM_TORCH_CASES, ids=lambda c: c if isinstance(c, str) else
                         _id(c) if isinstance(c, dict) else "")
def test_torch_matches_torch_optim_adam_and_adamw(name, preset, kwargs, dtype):
    compare(preset, lambda kw, dt: torch_run(kw, dt, name), kwargs, dtype)


@FRAMEWORKS
@BOTH  # float64: Keras' floatx (its learning rate's dtype) float64, and jax's x64
@pytest.mark.parametrize("name,preset,kwargs", ADAM_KERAS_CASES, ids=lambda c: c if isinstance(c, str) else
                         _id(c) if isinstance(c, dict) else "")
def test_keras_matches_keras_optimizers_adam_and_adamw(name, preset, kwargs, dtype):
    compare(preset, lambda kw, dt: keras_run(kw, dt, name), kwargs, dtype)


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("name,preset,kwargs", MAXIMIZE_TORCH_CASES + SGD_ADAGRAD_TORCH_CASES,
                         ids=lambda c: c if isinstance(c, str) else _id(c) if isinstance(c, dict) else "")
def test_torch_matches_torch_optim_sgd_adagrad_and_maximize(name, preset, kwargs, dtype):
    compare(preset, lambda kw, dt: torch_run(kw, dt, name), kwargs, dtype)


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("name,preset,kwargs", [
    ("RMSprop", rn.RMSProp.keras, dict(learning_rate=0.02, momentum=0.5, global_clipnorm=2.0)),
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05, global_clipnorm=2.0)),
    ("RMSprop", rn.RMSProp.keras, dict(learning_rate=0.02, clipnorm=1.5)),
], ids=lambda c: c if isinstance(c, str) else _id(c) if isinstance(c, dict) else "")
def test_keras_norm_clips_of_two_variables_stepped_together(name, preset, kwargs, dtype):
    """Keras' clipnorm clips each variable by its own norm, global_clipnorm both by their joint norm:
    rmsnum steps each array, with step's ``norm`` the joint norm for global_clipnorm. The joint norm
    is formed here in float64 (Keras sums in the dtype): inside the float32 tolerance."""
    parts = (slice(0, 2), slice(2, None))
    with keras_precision(dtype) as keras:
        variables = [keras.Variable(X0[part].astype(dtype), dtype=np.dtype(dtype).name) for part in parts]
        keras_opt = getattr(keras.optimizers, name)(**kwargs)
        want = []
        for t in range(STEPS):
            g = gradient(np.concatenate([keras.ops.convert_to_numpy(var.value) for var in variables]), t)
            keras_opt.apply_gradients([(keras.ops.convert_to_tensor(g[part]), var) for part, var in zip(parts, variables)])
            want.append(np.concatenate([keras.ops.convert_to_numpy(var.value) for var in variables]))
    opt = preset(**kwargs)
    arrays = [X0[part].astype(dtype) for part in parts]
    states = [opt.init(x) for x in arrays]
    got = []
    for t in range(STEPS):
        g = gradient(np.concatenate(arrays), t)
        grads = [g[part].copy() for part in parts]
        norm = math.sqrt(sum(float(np.vdot(h, h)) for h in grads)) if "global_clipnorm" in kwargs else None
        for x, h, state in zip(arrays, grads, states):
            opt.step(x, h, state, norm=norm)
        got.append(np.concatenate(arrays))
    assert_same_trajectory(np.array(got), np.array(want), dtype)


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("kwargs", ADAGRAD_KERAS_CASES, ids=_id)
def test_keras_matches_keras_optimizers_adagrad(kwargs, dtype):
    compare(rn.Adagrad.keras, lambda kw, dt: keras_run(kw, dt, "Adagrad"), kwargs, dtype)


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("kwargs", ADAM_OPTAX_CASES, ids=_id)
def test_optax_matches_optax_adam(kwargs, dtype):
    compare(rn.Adam.optax, lambda kw, dt: optax_run(kw, dt, "adam"), kwargs, dtype)


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("kwargs", OPTAX_CASES, ids=_id)
def test_optax_matches_optax_rmsprop(kwargs, dtype):
    compare(rn.RMSProp.optax, optax_run, kwargs, dtype)


@BOTH
@pytest.mark.parametrize("kwargs", TF1_CASES, ids=_id)
def test_tf1_matches_tf_compat_v1_rmsprop(kwargs, dtype):
    compare(rn.RMSProp.tf1, tf1_run, kwargs, dtype)


@FLOAT32
@pytest.mark.parametrize("kwargs", MXNET_CASES, ids=_id)
def test_mxnet_matches_mxnet_optimizer_rmsprop(kwargs, dtype):
    compare(rn.RMSProp.mxnet, mxnet_run, kwargs, dtype)


# --- hand-worked steps from the documented formulas (no framework needed) ---
# (preset, kwargs, x0, gradients of the successive steps, x after them).
# With x0 = 10 and g = 10 the first step is that of loss x**2 / 2.

sqrt = math.sqrt
HAND_WORKED = [
    # the book: s = 0.1 * (0.2 * -5)**2 = 0.1; x = -5 + 0.4 * 1 / sqrt(0.1 + 1e-6) = -3.735095
    ("d2l", dict(lr=0.4), -5.0, [-1.0], -5.0 + 0.4 / sqrt(0.1 + 1e-6)),
    # PyTorch: s = 0.01 * 100 = 1; x = 10 - 0.1 * 10 / (sqrt(1) + 1e-8) = 9.00000001
    ("torch", dict(lr=0.1), 10.0, [10.0], 10.0 - 1.0 / (1.0 + 1e-8)),
    # centered: g_avg = 0.1, den = sqrt(1 - 0.01) + 1e-8; x = 8.994962...
    ("torch", dict(lr=0.1, centered=True), 10.0, [10.0], 10.0 - 1.0 / (sqrt(0.99) + 1e-8)),
    # coupled decay: g = 10 + 0.5 * 10 = 15, s = 2.25, x = 10 - 1.5 / (1.5 + 1e-8) = 9.0000000067
    ("torch", dict(lr=0.1, weight_decay=0.5), 10.0, [10.0], 10.0 - 1.5 / (1.5 + 1e-8)),
    # momentum, alpha 0.75, g = 2 twice: s1 = 1, b1 = 2 / (1 + 1e-8); s2 = 1.75,
    # b2 = 0.5 * b1 + 2 / (sqrt(1.75) + 1e-8); x2 = 1 - 0.1 * (b1 + b2) = 0.548814...
    ("torch", dict(lr=0.1, alpha=0.75, momentum=0.5), 1.0, [2.0, 2.0],
     1.0 - 0.1 * (1.5 * 2 / (1 + 1e-8) + 2 / (sqrt(1.75) + 1e-8))),
    # Keras' documented example: s = 0.1 * 100 = 10; x = 10 - 0.1 * 10 / sqrt(10 + 1e-7) = 9.683772
    ("keras", dict(learning_rate=0.1), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.0 + 1e-7)),
    # centered: g_avg = 1, den = sqrt(10 - 1 + 1e-7); x = 9.6666666685
    ("keras", dict(learning_rate=0.1, centered=True), 10.0, [10.0], 10.0 - 1.0 / sqrt(9.0 + 1e-7)),
    # decoupled decay: x = 10 - 0.1 * 0.5 * 10 = 9.5, then the step of g = 10: 9.5 - 0.316228 = 9.183772
    ("keras", dict(learning_rate=0.1, weight_decay=0.5), 10.0, [10.0], 9.5 - 1.0 / sqrt(10.0 + 1e-7)),
    # TF1: s starts at 1: s = 0.9 * 1 + 0.1 * 100 = 10.9; x = 10 - 1 / sqrt(10.9 + 1e-10) = 9.697109
    ("tf1", dict(learning_rate=0.1), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.9 + 1e-10)),
    # epsilon 0, legal in TF1 since s starts at 1: x = 10 - 1 / sqrt(10.9) (RMSPropOptimizer's
    # documented ms <- decay * ms + (1 - decay) * g**2; mom <- momentum * mom + lr * g / sqrt(ms + epsilon))
    ("tf1", dict(learning_rate=0.1, epsilon=0.0), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.9)),
    # epsilon 0, centered: mg = 1, den = sqrt(10.9 - 1) = sqrt(9.9); x = 10 - 1 / sqrt(9.9)
    ("tf1", dict(learning_rate=0.1, epsilon=0.0, centered=True), 10.0, [10.0], 10.0 - 1.0 / sqrt(9.9)),
    # momentum 0.9, g = 10 twice: m1 = 1 / sqrt(10.9 + 1e-10); s2 = 0.9 * 10.9 + 10 = 19.81,
    # m2 = 0.9 * m1 + 1 / sqrt(19.81 + 1e-10); x2 = 10 - m1 - m2 = 9.199830
    ("tf1", dict(learning_rate=0.1, momentum=0.9), 10.0, [10.0, 10.0],
     10.0 - 1.9 / sqrt(10.9 + 1e-10) - 1.0 / sqrt(19.81 + 1e-10)),
    # optax: s = 10; x = 10 - 0.1 * 10 / sqrt(10 + 1e-8) = 9.683772
    ("optax", dict(learning_rate=0.1), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.0 + 1e-8)),
    # bias correction: s_hat = 10 / (1 - 0.9) = 100; x = 10 - 1 / sqrt(100 + 1e-8) = 9.900000000005
    ("optax", dict(learning_rate=0.1, bias_correction=True), 10.0, [10.0], 10.0 - 1.0 / sqrt(100.0 + 1e-8)),
    # eps outside: x = 10 - 1 / (sqrt(10) + 1e-8)
    ("optax", dict(learning_rate=0.1, eps_in_sqrt=False), 10.0, [10.0], 10.0 - 1.0 / (sqrt(10.0) + 1e-8)),
    # Nesterov trace: u = p + 0.9 * (p + 0.9 * 0), p = 0.1 * 10 / sqrt(10 + 1e-8); x = 10 - 1.9 p = 9.399167
    ("optax", dict(learning_rate=0.1, momentum=0.9, nesterov=True), 10.0, [10.0],
     10.0 - 1.9 / sqrt(10.0 + 1e-8)),
    # initial_scale 1 (TF1's s0) with optax's eps: x = 10 - 1 / sqrt(10.9 + 1e-8)
    ("optax", dict(learning_rate=0.1, initial_scale=1.0), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.9 + 1e-8)),
    # MXNet: n = 10; x = 10 - 0.1 * 10 / sqrt(10 + 1e-8) = 9.683772
    ("mxnet", dict(learning_rate=0.1), 10.0, [10.0], 10.0 - 1.0 / sqrt(10.0 + 1e-8)),
    # coupled wd: g = 10 + 0.5 * 10 = 15, n = 22.5; x = 10 - 1.5 / sqrt(22.5 + 1e-8) = 9.683772
    ("mxnet", dict(learning_rate=0.1, wd=0.5), 10.0, [10.0], 10.0 - 1.5 / sqrt(22.5 + 1e-8)),
    # centered (RMSPropAlex): n = 10, g_avg = 1, delta = -0.1 * 10 / sqrt(10 - 1 + 1e-8); x = 9.666667
    ("mxnet", dict(learning_rate=0.1, centered=True), 10.0, [10.0], 10.0 - 1.0 / sqrt(9.0 + 1e-8)),
    # centered, g = 10 twice: n2 = 19, g_avg2 = 1.9, delta2 = 0.9 * delta1 - 1 / sqrt(19 - 3.61 + 1e-8); x2 = 9.111760
    ("mxnet", dict(learning_rate=0.1, centered=True), 10.0, [10.0, 10.0],
     10.0 - 1.9 / sqrt(9.0 + 1e-8) - 1.0 / sqrt(15.39 + 1e-8)),
    # tf.keras 2 (optimizer_v2 RMSprop, TF 2.0-2.15), from its dense update and the documented
    # ApplyRMSProp / ApplyCenteredRMSProp kernels. Without momentum, eps outside the sqrt:
    # s = 0.1 * 100 = 10; x = 10 - 0.1 * 10 / (sqrt(10) + 1e-7) = 9.683772
    ("tf_keras2", dict(learning_rate=0.1), 10.0, [10.0], 10.0 - 1.0 / (sqrt(10.0) + 1e-7)),
    # centered, no momentum: g_avg = 1, den = sqrt(10 - 1) + 1e-7 = 3 + 1e-7; x = 9.666666...
    ("tf_keras2", dict(learning_rate=0.1, centered=True), 10.0, [10.0], 10.0 - 1.0 / (3.0 + 1e-7)),
    # momentum 0.9 (the fused kernel, eps inside), g = 10 twice: m1 = 1 / sqrt(10 + 1e-7);
    # s2 = 0.9 * 10 + 0.1 * 100 = 19, m2 = 0.9 m1 + 1 / sqrt(19 + 1e-7); x2 = 10 - m1 - m2 = 9.169752
    ("tf_keras2", dict(learning_rate=0.1, momentum=0.9), 10.0, [10.0, 10.0],
     10.0 - 1.9 / sqrt(10.0 + 1e-7) - 1.0 / sqrt(19.0 + 1e-7)),
    # centered with momentum: mom = 0.1 * 10 / sqrt(10 - 1 + 1e-7); x = 9.666666...
    ("tf_keras2", dict(learning_rate=0.1, momentum=0.5, centered=True), 10.0, [10.0], 10.0 - 1.0 / sqrt(9.0 + 1e-7)),
]


def _hand_id(case) -> str:
    preset, kwargs, _, grads, _ = case
    name = preset if isinstance(preset, str) else preset.__qualname__
    return f"{name}({_id(kwargs)})x{len(grads)}"


# Adam from torch.optim.Adam/AdamW's documented algorithm and keras.optimizers.Adam's update
# (alpha = lr sqrt(1 - beta2**t) / (1 - beta1**t); x -= m alpha / (sqrt(v) + epsilon)).
# (preset, kwargs, x0, gradients of the successive steps, x after them).
ADAM_HAND_WORKED = [
    # m = 0.1 * 10 = 1, v = 0.001 * 100 = 0.1; m_hat = 10, v_hat = 100: x = 10 - 0.1 * 10 / (10 + 1e-8)
    (rn.Adam.torch, dict(lr=0.1), 10.0, [10.0], 10.0 - 1.0 / (10.0 + 1e-8)),
    # coupled decay: g = 10 + 0.5 * 10 = 15; m_hat = 15, v_hat = 225: x = 10 - 1.5 / (15 + 1e-8)
    (rn.Adam.torch, dict(lr=0.1, weight_decay=0.5), 10.0, [10.0], 10.0 - 1.5 / (15.0 + 1e-8)),
    # AdamW: x = 10 * (1 - 0.1 * 0.5) = 9.5 first, then the step of g = 10: 9.5 - 1 / (10 + 1e-8)
    (rn.AdamW.torch, dict(lr=0.1, weight_decay=0.5), 10.0, [10.0], 9.5 - 1.0 / (10.0 + 1e-8)),
    # g = 10 then 0: v2 = 0.0999 < v_max = 0.1. Without AMSGrad step 2 divides by sqrt(0.0999 / (1 - 0.999**2)),
    # with it by sqrt(0.1 / (1 - 0.999**2)); m2 = 0.9, m_hat = 0.9 / (1 - 0.81).
    (rn.Adam.torch, dict(lr=0.1), 10.0, [10.0, 0.0],
     10.0 - 1.0 / (10.0 + 1e-8) - 0.1 * (0.9 / 0.19) / (sqrt(0.0999 / (1 - 0.999**2)) + 1e-8)),
    (rn.Adam.torch, dict(lr=0.1, amsgrad=True), 10.0, [10.0, 0.0],
     10.0 - 1.0 / (10.0 + 1e-8) - 0.1 * (0.9 / 0.19) / (sqrt(0.1 / (1 - 0.999**2)) + 1e-8)),
    # Keras: alpha = 0.1 sqrt(0.001) / 0.1; x = 10 - 1 * alpha / (sqrt(0.1) + 1e-7) (epsilon outside the correction)
    (rn.Adam.keras, dict(learning_rate=0.1), 10.0, [10.0], 10.0 - sqrt(0.001) / (sqrt(0.1) + 1e-7)),
    # Keras AdamW: x = 10 - 0.1 * 0.5 * 10 = 9.5, then the step
    (rn.AdamW.keras, dict(learning_rate=0.1, weight_decay=0.5), 10.0, [10.0], 9.5 - sqrt(0.001) / (sqrt(0.1) + 1e-7)),
]

# MXNet 1.x, from its kernels in src/operator/optimizer_op-inl.h (SGDKernel, SGDMomKernel,
# AdamUpdateKernel, RMSPropUpdateKernel, RMSPropAlexUpdateKernel: the gradient rescale_grad * g, clipped
# to [-clip_gradient, clip_gradient], with wd * x added after the clip in SGD and before it in Adam and
# RMSProp; RMSProp clips the new weights to [-clip_weights, clip_weights]) and python/mxnet/optimizer's
# Adam.update (lr * sqrt(1 - beta2**t) / (1 - beta1**t)).
MXNET_HAND_WORKED = [
    # SGD: clip(0.5 * 10, 2) = 2; (1 - 0.1 * 0.5) * 10 - 0.1 * 2 = 9.3
    (rn.SGD.mxnet, dict(learning_rate=0.1, wd=0.5, rescale_grad=0.5, clip_gradient=2.0), 10.0, [10.0], 9.3),
    # SGD with momentum, g = 10 twice, clipped to 2: mom1 = -0.2, mom2 = 0.9 * -0.2 - 0.2 = -0.38; x2 = 9.42
    (rn.SGD.mxnet, dict(learning_rate=0.1, momentum=0.9, clip_gradient=2.0), 10.0, [10.0, 10.0], 10.0 - 0.2 - 0.38),
    # no clip with clip_gradient=-1 (MXNet's "off"): x = 10 - 0.1 * 10 = 9
    (rn.SGD.mxnet, dict(learning_rate=0.1, clip_gradient=-1.0), 10.0, [10.0], 9.0),
    # Adam: clip(0.5 * 10 + 0.5 * 10, 1) = 1; m = 0.1, v = 0.001; lr_t = 0.1 sqrt(0.001) / 0.1;
    # x = 10 - lr_t * 0.1 / (sqrt(0.001) + 1e-8)
    (rn.Adam.mxnet, dict(learning_rate=0.1, wd=0.5, rescale_grad=0.5, clip_gradient=1.0), 10.0, [10.0],
     10.0 - sqrt(0.001) * 0.1 / (sqrt(0.001) + 1e-8)),
    # RMSProp: clip(0.5 * 10, 2) = 2, n = 0.1 * 4 = 0.4; x = 10 - 0.1 * 2 / sqrt(0.4 + 1e-8) = 9.68377, clipped to 9.5
    (rn.RMSProp.mxnet, dict(learning_rate=0.1, rescale_grad=0.5, clip_gradient=2.0, clip_weights=9.5), 10.0, [10.0],
     9.5),
    # the same without clip_weights
    (rn.RMSProp.mxnet, dict(learning_rate=0.1, rescale_grad=0.5, clip_gradient=2.0), 10.0, [10.0],
     10.0 - 0.2 / sqrt(0.4 + 1e-8)),
    # centered (RMSPropAlex): g = 2 after the clip, n = 0.4, g_avg = 0.2; delta = -0.1 * 2 / sqrt(0.4 - 0.04 + 1e-8)
    (rn.RMSProp.mxnet, dict(learning_rate=0.1, centered=True, clip_gradient=2.0), 10.0, [10.0],
     10.0 - 0.2 / sqrt(0.36 + 1e-8)),
]

ALL_HAND_WORKED = HAND_WORKED + ADAM_HAND_WORKED + MXNET_HAND_WORKED


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-14), (np.float32, 1e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("case", ALL_HAND_WORKED, ids=[_hand_id(c) for c in ALL_HAND_WORKED])
def test_hand_worked_steps(case, dtype, rtol):
    """rmsnum's compiled step in float64 and the NumPy reference in both dtypes. (The compiled float32
    kernels of these presets equal the reference in every engine: the rows of conftest.OPTIMIZERS;
    compiling one step kernel per case and dtype here would take a minute of the README's test run.)"""
    preset, kwargs, x0, grads, expected = case
    opt = (getattr(rn.RMSProp, preset) if isinstance(preset, str) else preset)(**kwargs)
    steps = (opt.step, lambda x, g, state: reference_step(opt, x, g, state)) if dtype == np.float64 else (
        lambda x, g, state: reference_step(opt, x, g, state),)
    for step in steps:
        x = np.array([x0], dtype=dtype)
        state = opt.init(x)
        for g in grads:
            step(x, np.array([g], dtype=dtype), state)
        assert state.t == len(grads)
        np.testing.assert_allclose(x[0], expected, rtol=rtol, atol=0)


def test_readme_table_names_every_compared_preset():
    """README's table of what is proven lists every preset these tests compare."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Proven against the frameworks")[1].split("\n### ")[0]
    compared = {preset for _, preset, _ in ADAM_TORCH_CASES + ADAM_KERAS_CASES + MAXIMIZE_TORCH_CASES
                + SGD_ADAGRAD_TORCH_CASES}
    compared |= {rn.RMSProp.torch, rn.RMSProp.keras, rn.RMSProp.optax, rn.RMSProp.tf1, rn.RMSProp.mxnet,
                 rn.RMSProp.tf_keras2, rn.Adagrad.keras, rn.Adam.optax, rn.SGD.mxnet, rn.Adam.mxnet}
    names = {f"{preset.__self__.__name__}.{preset.__name__}" for preset in compared}
    assert not {name for name in names if f"`{name}`" not in section}
