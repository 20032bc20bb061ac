"""rmsnum.kernels: the rules called from users' own @numba.njit code (CUDA: tests/test_cuda.py)."""

import functools

import hypothesis
import hypothesis.strategies as st
import numba
import numpy as np
import pytest
from conftest import OPTIMIZERS

import rmsnum as rn
from rmsnum import kernels as rk
from rmsnum import rules


@functools.cache
def user_loop(rule):
    """A user's own jitted loop over coordinates calling the general form of ``rule``,
    with its slots (0, 1 or 3 of them) passed as a tuple of arrays."""
    nslots = len(rules.lookup(rule).slots)
    if nslots == 0:
        @numba.njit
        def run(x, g, S, r1, r2, c):
            for i in range(x.size):
                x[i] = rule(x[i], g[i], r1, r2, c)
    elif nslots == 1:
        @numba.njit
        def run(x, g, S, r1, r2, c):
            for i in range(x.size):
                x[i], S[0][i] = rule(x[i], g[i], S[0][i], r1, r2, c)
    else:
        assert nslots == 3

        @numba.njit
        def run(x, g, S, r1, r2, c):
            for i in range(x.size):
                x[i], S[0][i], S[1][i], S[2][i] = rule(x[i], g[i], S[0][i], S[1][i], S[2][i], r1, r2, c)
    return run


@numba.njit
def chapter_loop(x, g, s, lr, gamma, eps):
    for i in range(x.size):
        x[i], s[i] = rk.rmsprop_update(x[i], g[i], s[i], lr, gamma, eps)


def _problem(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(9).astype(dtype)
    grads = [rng.standard_normal(9).astype(dtype) for _ in range(4)]
    return x, grads


# Every row in float64; in float32 a row per rule and the rows of the rarely-on options (each row is a
# user's loop and a step kernel compiled for its coefficients' types).
FLOAT32_ROWS = ("rmsprop", "rmsprop-everything", "rmsprop-mxnet-options-norm-clipped", "sgd", "preset-sgd-torch",
                "momentum", "momentum-mxnet-options-damped", "adagrad", "adagrad-torch-options-clipped", "adam",
                "adam-amsgrad", "preset-adam-mxnet")


@pytest.mark.parametrize("name, dtype", [(name, "float64") for name in OPTIMIZERS]
                         + [(name, "float32") for name in FLOAT32_ROWS])
def test_general_form_equals_step_bit_for_bit(name, dtype):
    """Every rule and variant: a user's njit loop over rk.<rule> with opt.coefficients and
    rk.debias reproduces opt.step exactly, in the dtype given."""
    opt = OPTIMIZERS[name]
    x, grads = _problem(dtype)
    xs, state = x.copy(), opt.init(x)
    names = opt.spec.slots
    slots = tuple(np.zeros_like(x) if getattr(state, n) is None else getattr(state, n).copy() for n in names)
    dt = np.dtype(dtype).type
    d1, d2 = state.d1, state.d2  # the denominators start where init sets them (0, or Adagrad's 1 - lr_decay)
    decays = opt.decays(dtype)
    run = user_loop(getattr(rk, opt.rule.__name__))
    for g in grads:
        opt.step(xs, g, state)
        r1 = r2 = rk.ONE
        if decays is not None:
            d1, d2 = rk.debias(d1, decays[0], decays[1]), rk.debias(d2, decays[2], decays[3])
            r1, r2 = dt(1) / d1, dt(1) / d2
        for arr, name in zip(slots, names):
            if getattr(state, name) is None:  # a slot the optimizer does not keep reads 0 at every step
                arr[:] = 0
        flat = g.reshape(-1)  # clip_norm (Keras' clipnorm): the step's coefficients from the gradient's norm
        run(x, g, slots, r1, r2, rk.norm_clipped(opt.coefficients(dtype), dt(np.dot(flat, flat))))
    assert x.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(x, xs)
    for arr, slot in zip(slots, names):
        if getattr(state, slot) is not None:
            np.testing.assert_array_equal(arr, getattr(state, slot))


def test_the_package_kernels_use_these_functions():
    assert rk.rmsprop is rules.rmsprop and rk.adam is rules.adam and rk.debias is rules.debias
    assert rn.RMSProp(lr=0.1).rule is rk.rmsprop


@pytest.mark.parametrize("gamma", [0.9, 0.875])
def test_chapter_update_equals_step_bit_for_bit(dtype, gamma):
    """Bit for bit where 1 - gamma is the same in the dtype and rounded from float64 (all of
    float64; float32 when 1 - gamma is exact), else within a few ulp."""
    x, grads = _problem(dtype)
    opt = rn.RMSProp(lr=0.4, gamma=gamma, eps=1e-6)
    xs, state, s = x.copy(), opt.init(x), np.zeros_like(x)
    dt = np.dtype(dtype).type
    for g in grads:
        opt.step(xs, g, state)
        chapter_loop(x, g, s, dt(0.4), dt(gamma), dt(1e-6))
    if dtype == "float32" and gamma == 0.9:
        np.testing.assert_allclose(x, xs, rtol=1e-6)
        np.testing.assert_allclose(s, state.s, rtol=1e-6)
        return
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(s, state.s)
    float32_only = [sig for sig in chapter_loop.signatures if sig[0].dtype == numba.float32]
    if dtype == "float32":  # compiled for float32 arguments, no promotion of the state
        assert float32_only and s.dtype == np.float32


def test_chapter_update_from_python(dtype):
    dt = np.dtype(dtype).type
    x, s = rk.rmsprop_update(dt(-5), dt(-1), dt(0), dt(0.4), dt(0.9), dt(1e-6))
    assert type(x) is dt and type(s) is dt
    assert s == dt(0.9) * dt(0) + (dt(1) - dt(0.9)) * (dt(-1) * dt(-1))
    assert x == dt(-5) - (dt(0.4) * dt(-1)) / np.sqrt(s + dt(1e-6))
    x64, s64 = rk.rmsprop_update(-5.0, -1.0, 0.0, 0.4, 0.9, 1e-6)
    assert (x64, s64) == pytest.approx((-5 + 0.4 / np.sqrt(0.1 + 1e-6), 0.1))


def test_numeric_replaces_the_neutrals(dtype):
    c = rn.RMSProp.torch(lr=0.01, momentum=0.9).coefficients(dtype)
    plain = rk.numeric(c)
    assert len(plain) == len(c) and all(type(v) is np.dtype(dtype).type for v in plain)
    assert [float(v) for v in plain] == [float(v) for v in c]
    assert rk.numeric((rk.ZERO, rk.ONE)) == (0.0, 1.0)
    assert type(rk.numeric((rk.ONE,), "float32")[0]) is np.float32


@pytest.mark.parametrize("bad, dtype, error, match", [
    ([0.1], None, TypeError, "coefficients must be a tuple"),
    ((0.1,), "int64", TypeError, "dtype must be float32 or float64"),
])
def test_numeric_bad_input(bad, dtype, error, match):
    with pytest.raises(error, match=match):
        rk.numeric(bad, dtype)


@hypothesis.given(
    lr=st.floats(1e-4, 1.0), gamma=st.floats(0.0, 0.999), eps=st.floats(1e-8, 1e-2),
    x=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=6),
    scale=st.floats(-10.0, 10.0),
)
def test_chapter_update_property(lr, gamma, eps, x, scale):
    """For any hyperparameters and data, the chapter's rule in a user's njit loop equals
    RMSProp.step (float64) bit for bit over three steps."""
    x = np.array(x)
    xs, s = x.copy(), np.zeros_like(x)
    opt = rn.RMSProp(lr=lr, gamma=gamma, eps=eps)
    state = opt.init(xs)
    for k in range(3):
        g = scale * (x + k)
        opt.step(xs, g, state)
        chapter_loop(x, g, s, lr, gamma, eps)
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(s, state.s)
