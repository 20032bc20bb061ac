"""Equivalences between rules, on every CPU backend (the CUDA ones are in test_cuda.py).

RMSProp with eps outside the square root and bias correction is Adam with beta1 = 0 (optax
tests the same identity): with beta1 = 0, Adam's m is g exactly (0 * m + 1 * g) and its
correction 1 - 0**t is 1, so both compute ``s <- b2 s + (1 - b2) g**2`` and
``x <- x - lr g / (sqrt(s / (1 - b2**t)) + eps)``.

- The compiled rules (step, serial and parallel, simulate, sweep) write that formula in the same
  order of operations, so they agree bit for bit.
- The NumPy reference codes the two rules independently and orders the last division differently
  (RMSProp: ``lr * (g / den)``; Adam: ``(lr * g) / den``), so its two runs differ by rounding:
  within the per-dtype tolerance RTOL of conftest.py, relative to the scale of the run.
"""

import numpy as np
import pytest
from conftest import RTOL

import rmsnum as rn
from rmsnum.backends import cpu

# (lr, b2, eps): Adam's defaults, where eps is negligible, and a large eps that shapes the steps.
CASES = [(0.05, 0.999, 1e-8), (0.3, 0.9, 1e-3)]


def rmsprop(lr, b2, e):
    return rn.RMSProp(lr, gamma=b2, eps=e, eps_in_sqrt=False, bias_correction=True)


def adam(lr, b2, e):
    return rn.Adam(lr, beta1=0.0, beta2=b2, eps=e)


@pytest.mark.parametrize("case", CASES, ids=["adam-defaults", "large-eps"])
@pytest.mark.parametrize("n", [257, cpu.PARALLEL_THRESHOLD + 1001], ids=["serial", "parallel"])
def test_step_rmsprop_is_adam_without_momentum(case, n, dtype):
    R, A = rmsprop(*case), adam(*case)
    rng = np.random.default_rng(0)
    x_r = rng.normal(size=n).astype(dtype)
    x_a = x_r.copy()
    s_r, s_a = R.init(x_r), A.init(x_a)
    for _ in range(8):
        g = rng.normal(size=n).astype(dtype)
        R.step(x_r, g, s_r)
        A.step(x_a, g, s_a)
        np.testing.assert_array_equal(x_r, x_a)
        np.testing.assert_array_equal(s_r.s, s_a.s)
    assert s_r.t == s_a.t == 8
    assert s_r.d2 == s_a.d2  # 1 - b2**t, by the same recurrence
    np.testing.assert_array_equal(s_a.m, g)  # beta1 = 0: the first moment is the last gradient


OBJECTIVES = {"quadratic": rn.quadratic_2d(), "noisy-quadratic": rn.quadratic_2d(noise=0.3)}


@pytest.mark.parametrize("case", CASES, ids=["adam-defaults", "large-eps"])
@pytest.mark.parametrize("objective", list(OBJECTIVES))
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_simulate_rmsprop_is_adam_without_momentum(case, objective, backend, dtype):
    obj = OBJECTIVES[objective]
    run_r = rn.simulate(rmsprop(*case), obj, (-5, -2), 40, seed=3, dtype=dtype, backend=backend)
    run_a = rn.simulate(adam(*case), obj, (-5, -2), 40, seed=3, dtype=dtype, backend=backend)
    assert run_r.diverged_at is None and run_a.diverged_at is None
    assert run_r.state.t == run_a.state.t == 40
    if backend == "cpu":
        np.testing.assert_array_equal(run_r.x, run_a.x)
        np.testing.assert_array_equal(run_r.loss, run_a.loss)
        np.testing.assert_array_equal(run_r.state.s, run_a.state.s)
    else:
        # An ulp or two per step; the iterates approach 0, so relative to the run's scale.
        rtol = RTOL[dtype]
        np.testing.assert_allclose(run_r.x, run_a.x, rtol=rtol, atol=rtol * np.abs(run_a.x).max())
        np.testing.assert_allclose(run_r.loss, run_a.loss, rtol=rtol, atol=rtol * np.abs(run_a.loss).max())
        np.testing.assert_allclose(run_r.state.s, run_a.state.s, rtol=rtol, atol=rtol * np.abs(run_a.state.s).max())


def test_sweep_rmsprop_is_adam_without_momentum(dtype):
    """A grid over lr, b2 and eps, in chunks: the same numbers configuration by configuration."""
    lrs, b2s, eps = [0.01, 0.1, 0.5], [0.9, 0.999], [1e-8, 1e-3]
    kwargs = dict(record=5, tol=[1e-2], chunk_size=5, seed=3, progress=False, dtype=dtype)
    noisy = rn.quadratic_2d(noise=0.3)
    res_r = rn.sweep(rn.RMSProp, noisy, (-5, -2), 30, {"lr": lrs, "gamma": b2s, "eps": eps},
                     fixed={"eps_in_sqrt": False, "bias_correction": True}, **kwargs)
    res_a = rn.sweep(rn.Adam, noisy, (-5, -2), 30, {"lr": lrs, "beta2": b2s, "eps": eps},
                     fixed={"beta1": 0.0}, **kwargs)
    assert res_r.shape == res_a.shape == (3, 2, 2)
    for name in ("final_x", "final_loss", "loss", "diverged_at", "steps_to_tol"):
        np.testing.assert_array_equal(getattr(res_r, name), getattr(res_a, name), err_msg=name)
