"""States that move between rmsnum and torch, optax and Keras 3 (rmsnum.interop).

For each framework and preset: K steps in the framework continued for K in rmsnum,
and K in rmsnum continued for K in the framework, each equal to 2K steps in the
framework, on the noisy quadratic of test_frameworks.py with its tolerances
(float64 1e-12, float32 1e-5, relative). Then the errors: another optimizer,
option set, shape or dtype.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from frameworks import framework, jax_precision, keras_precision
from test_frameworks import (BOTH, STEPS, X0, _id, assert_same_trajectory, gradient, keras_maker, keras_run, optax_maker,
                             optax_run, torch_maker, torch_run)

import rmsnum as rn
from rmsnum import interop

K = STEPS // 2
FRAMEWORKS = pytest.mark.frameworks


def rmsnum_steps(opt, x, state, start: int, stop: int) -> list[np.ndarray]:
    out = []
    for t in range(start, stop):
        opt.step(x, gradient(x, t), state)
        out.append(x.copy())
    return out


def check_both_ways(opt, full, make, from_framework, to_framework, dtype) -> None:
    """``make(x0)`` -> (step, read, handle) of a fresh framework optimizer; ``full`` its 2K-step run."""
    # K steps in the framework, then K in rmsnum
    step, read, handle = make(X0.astype(dtype))
    for t in range(K):
        step(gradient(read(), t))
    state = from_framework(opt, handle)
    # a framework without a count where t does not matter; torch's SGD: 1 once its buffer exists
    assert state.t == K or opt.decays() is None or isinstance(opt, rn.Momentum) and state.t == 1
    x = read()
    second = rmsnum_steps(opt, x, state, K, 2 * K)
    assert_same_trajectory(np.array(second), full[K + 1:], dtype)
    # K steps in rmsnum, then K in the framework
    x = X0.astype(dtype)
    state = opt.init(x)
    rmsnum_steps(opt, x, state, 0, K)
    step, read, handle = make(x.copy())
    to_framework(opt, state, handle)
    second = []
    for t in range(K, 2 * K):
        step(gradient(read(), t))
        second.append(read())
    assert_same_trajectory(np.array(second), full[K + 1:], dtype)


# --- torch ---------------------------------------------------------------------

TORCH_CASES = [
    ("RMSprop", rn.RMSProp.torch, dict(lr=0.01, alpha=0.95, weight_decay=0.05, momentum=0.8, centered=True)),
    ("RMSprop", rn.RMSProp.torch, dict(lr=0.02)),
    ("Adam", rn.Adam.torch, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("AdamW", rn.AdamW.torch, dict(lr=0.05, weight_decay=0.3)),
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("SGD", rn.SGD.torch, dict(lr=0.05, maximize=True)),
    ("SGD", rn.SGD.torch, dict(lr=0.02, momentum=0.9, dampening=0.3)),
    ("Adagrad", rn.Adagrad.torch, dict(lr=0.3, initial_accumulator_value=0.5, weight_decay=0.1, lr_decay=0.05)),
]


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("name,preset,kwargs", TORCH_CASES,
                         ids=lambda c: c if isinstance(c, str) else _id(c) if isinstance(c, dict) else "")
def test_torch_state_continues_in_rmsnum_and_back(name, preset, kwargs, dtype):
    check_both_ways(preset(**kwargs), torch_run(kwargs, dtype, name), torch_maker(name, kwargs),
                    lambda opt, h: interop.from_torch(opt, *h), lambda opt, st, h: interop.to_torch(opt, st, *h),
                    dtype)


@FRAMEWORKS
@BOTH
def test_torch_sgd_state_before_the_first_step_leaves_dampening_to_torch(dtype):
    torch = framework("torch")
    kwargs = dict(lr=0.02, momentum=0.9, dampening=0.5)
    opt = rn.SGD.torch(**kwargs)
    p = torch.nn.Parameter(torch.tensor(X0.astype(dtype)))
    topt = torch.optim.SGD([p], **kwargs)
    assert interop.from_torch(opt, topt, p).t == 0  # no buffer yet: a fresh state
    x = X0.astype(dtype)
    state = opt.init(x)
    bad = opt.init(x)
    bad.m[...] = 1.0
    with pytest.raises(ValueError, match="t = 0 and a momentum buffer that is not zero"):
        interop.to_torch(opt, bad, topt, p)
    interop.to_torch(opt, state, topt, p)
    assert topt.state[p] == {}  # torch's next step is its first, undamped
    for t in range(3):
        g = gradient(x, t)
        opt.step(x, g, state)
        p.grad = torch.from_numpy(g.copy())
        topt.step()
        np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert interop.from_torch(opt, topt, p).t == 1  # torch's SGD counts no steps: 1, "not the first"


@FRAMEWORKS
def test_torch_state_keys_and_step():
    torch = framework("torch")
    p = torch.nn.Parameter(torch.tensor(X0.copy()))
    topt = torch.optim.RMSprop([p], lr=0.01, momentum=0.9, centered=True)
    opt = rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True)
    fresh = interop.from_torch(opt, topt, p)  # before torch's first step: a fresh state
    assert fresh.t == 0 and all(not a.any() for a in fresh.arrays.values())
    for t in range(3):
        p.grad = torch.from_numpy(gradient(p.detach().numpy(), t))
        topt.step()
    state = interop.from_torch(opt, topt, p)
    assert state.t == 3 and state.slots == ("s", "m", "g_avg")
    np.testing.assert_array_equal(state.s, topt.state[p]["square_avg"].numpy())
    np.testing.assert_array_equal(state.m, topt.state[p]["momentum_buffer"].numpy())
    np.testing.assert_array_equal(state.g_avg, topt.state[p]["grad_avg"].numpy())
    assert not np.shares_memory(state.s, topt.state[p]["square_avg"].numpy())
    interop.to_torch(opt, state, topt, p)
    assert set(topt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    assert float(topt.state[p]["step"]) == 3.0


@FRAMEWORKS
def test_torch_adam_denominators_follow_the_step():
    torch = framework("torch")
    p = torch.nn.Parameter(torch.tensor(X0.copy()))
    topt = torch.optim.Adam([p], lr=0.05, betas=(0.8, 0.99))
    for t in range(5):
        p.grad = torch.from_numpy(gradient(p.detach().numpy(), t))
        topt.step()
    state = interop.from_torch(rn.Adam.torch(lr=0.05, betas=(0.8, 0.99)), topt, p)
    assert state.t == 5
    assert state.d1 == pytest.approx(1 - 0.8**5, rel=1e-15) and state.d2 == pytest.approx(1 - 0.99**5, rel=1e-15)


@FRAMEWORKS
def test_torch_mismatches_are_refused_before_anything_is_written():
    torch = framework("torch")
    p = torch.nn.Parameter(torch.tensor(X0.copy()))
    topt = torch.optim.RMSprop([p], lr=0.01, momentum=0.9)
    p.grad = torch.ones_like(p)
    topt.step()
    before = {k: v.clone() for k, v in topt.state[p].items()}
    with pytest.raises(ValueError, match=r"torch.optim.RMSprop \(param's group\) is RMSProp\(lr=0.01.*not opt"):
        interop.from_torch(rn.RMSProp.torch(lr=0.01), topt, p)  # another option set (no momentum)
    with pytest.raises(ValueError, match="not opt"):
        interop.from_torch(rn.Adam.torch(lr=0.01), topt, p)  # another optimizer
    with pytest.raises(TypeError, match="torch_opt must be a torch.optim optimizer of RMSprop, Adam"):
        interop.from_torch(rn.RMSProp.torch(lr=0.01), torch.optim.Adamax([p]), p)
    with pytest.raises(ValueError, match="param is not one of torch_opt's parameters"):
        interop.from_torch(rn.RMSProp.torch(lr=0.01, momentum=0.9), topt, torch.nn.Parameter(torch.zeros(6)))
    opt = rn.RMSProp.torch(lr=0.01, momentum=0.9)
    wrong_shape = opt.init(np.zeros(5))
    with pytest.raises(ValueError, match=r"state.s must be an array of shape \(6,\) and dtype float64"):
        interop.to_torch(opt, wrong_shape, topt, p)
    wrong_dtype = opt.init(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="dtype float64"):
        interop.to_torch(opt, wrong_dtype, topt, p)
    with pytest.raises(ValueError, match="state belongs to another optimizer"):
        interop.to_torch(opt, rn.RMSProp.torch(lr=0.01).init(np.zeros(6)), topt, p)
    for key, value in before.items():
        assert torch.equal(topt.state[p][key], value)
    p32 = torch.nn.Parameter(torch.zeros(6, dtype=torch.float16))
    with pytest.raises(ValueError, match="param's dtype must be float32 or float64, got float16"):
        interop.from_torch(opt, torch.optim.RMSprop([p32], lr=0.01, momentum=0.9), p32)
    topt.state[p].pop("momentum_buffer")
    with pytest.raises(ValueError, match=r"holds the slots \['s'\], opt keeps \['s', 'm'\]"):
        interop.from_torch(opt, topt, p)


# --- optax ---------------------------------------------------------------------

OPTAX_CASES = [
    ("rmsprop", rn.RMSProp.optax, dict(learning_rate=0.02)),
    ("rmsprop", rn.RMSProp.optax, dict(learning_rate=0.01, decay=0.95, initial_scale=0.5, centered=True,
                                       momentum=0.8, nesterov=True, bias_correction=True)),
    ("rmsprop", rn.RMSProp.optax, dict(learning_rate=0.02, eps_in_sqrt=False, bias_correction=True)),
    ("adam", rn.Adam.optax, dict(learning_rate=0.05, b1=0.8)),
]


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("transform,preset,kwargs", OPTAX_CASES,
                         ids=lambda c: c if isinstance(c, str) else _id(c) if isinstance(c, dict) else "")
def test_optax_state_continues_in_rmsnum_and_back(transform, preset, kwargs, dtype):
    full = optax_run(kwargs, dtype, transform)
    with jax_precision(dtype):
        def to(opt, state, box):
            box["state"] = interop.to_optax(opt, state, box["state"])

        check_both_ways(preset(**kwargs), full, optax_maker(transform, kwargs),
                        lambda opt, box: interop.from_optax(opt, box["state"], box["x"]), to, dtype)


@FRAMEWORKS
def test_optax_mismatches_are_refused():
    jax, optax = framework("jax"), framework("optax")
    x = jax.numpy.zeros(6)
    centered = optax.rmsprop(0.01, centered=True).init(x)
    with pytest.raises(ValueError, match=r"opt_state is the chain \('ScaleByRStdDevState', 'EmptyState', "
                                         r"'EmptyState'\), opt = .* has the chain \('ScaleByRmsState'"):
        interop.from_optax(rn.RMSProp.optax(0.01), centered, x)
    with pytest.raises(ValueError, match="opt_state is the chain"):
        interop.from_optax(rn.Adam.optax(0.01), centered, x)
    with pytest.raises(ValueError, match="has no optax.rmsprop counterpart"):
        interop.from_optax(rn.RMSProp.torch(lr=0.01, momentum=0.9), centered, x)
    with pytest.raises(ValueError, match="has no optax.adam counterpart"):
        interop.from_optax(rn.Adam(lr=0.01, amsgrad=True), optax.adam(0.01).init(x), x)
    opt = rn.RMSProp.optax(0.01, centered=True)
    with pytest.raises(ValueError, match=r"opt_state.s mu is float32\[6\], the parameters are float32\[5\]"):
        interop.from_optax(opt, centered, jax.numpy.zeros(5))
    with pytest.raises(ValueError, match=r"state.s must be an array of shape \(6,\) and dtype float32"):
        interop.to_optax(opt, opt.init(np.zeros(6)), centered)  # float64 state, float32 optax state
    state = interop.from_optax(opt, centered, x)
    assert state.t == 0 and state.slots == ("s", "g_avg") and state.s.dtype == np.float32


# --- Keras 3 -------------------------------------------------------------------

KERAS_CASES = [
    ("RMSprop", rn.RMSProp.keras, dict(learning_rate=0.01, rho=0.95, momentum=0.8, centered=True,
                                       weight_decay=0.05)),
    ("Adam", rn.Adam.keras, dict(learning_rate=0.05, beta_1=0.8, amsgrad=True, weight_decay=0.1)),
    ("AdamW", rn.AdamW.keras, dict(learning_rate=0.05, weight_decay=0.3)),
    ("Adagrad", rn.Adagrad.keras, dict(learning_rate=0.3, clipvalue=0.5)),
    ("RMSprop", rn.RMSProp.keras, dict(learning_rate=0.02, momentum=0.5, clipnorm=3.0)),
]


@FRAMEWORKS
@BOTH
@pytest.mark.parametrize("name,preset,kwargs", KERAS_CASES,
                         ids=lambda c: c if isinstance(c, str) else _id(c) if isinstance(c, dict) else "")
def test_keras_state_continues_in_rmsnum_and_back(name, preset, kwargs, dtype):
    full = keras_run(kwargs, dtype, name)
    with keras_precision(dtype) as keras:
        check_both_ways(preset(**kwargs), full, keras_maker(keras, name, kwargs, dtype),
                        lambda opt, h: interop.from_keras(opt, *h),
                        lambda opt, st, h: interop.to_keras(opt, st, *h), dtype)


@FRAMEWORKS
def test_keras_mismatches_are_refused():
    with keras_precision(np.float32) as keras:
        var = keras.Variable(X0.astype(np.float32))
        kopt = keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9)
        opt = rn.RMSProp.keras(learning_rate=0.01, momentum=0.9)
        assert interop.from_keras(opt, kopt, var).t == 0  # not built yet: a fresh state
        kopt.apply_gradients([(keras.ops.ones((6,)), var)])
        state = interop.from_keras(opt, kopt, var)
        assert state.t == 1 and state.slots == ("s", "m")
        with pytest.raises(ValueError, match=r"keras.optimizers.RMSprop is RMSProp\(.*not opt"):
            interop.from_keras(rn.RMSProp.keras(learning_rate=0.01), kopt, var)
        with pytest.raises(ValueError, match="not opt"):
            interop.from_keras(rn.RMSProp.keras(learning_rate=0.02, momentum=0.9), kopt, var)
        with pytest.raises(ValueError, match="variable is not one of the variables keras_opt was built for"):
            interop.from_keras(opt, kopt, keras.Variable(np.zeros(6, np.float32)))
        with pytest.raises(ValueError, match="not opt"):  # Keras' clipvalue is an option too
            interop.from_keras(opt, keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9, clipvalue=1.0), var)
        for clip in ("clipnorm", "global_clipnorm"):  # and so are its norm clips
            with pytest.raises(ValueError, match="not opt"):
                interop.from_keras(opt, keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9, **{clip: 1.0}), var)
        with pytest.raises(ValueError, match="keras_opt sets use_ema"):
            interop.from_keras(opt, keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9, use_ema=True), var)
        with pytest.raises(TypeError, match="keras_opt must be a keras.optimizers optimizer"):
            interop.from_keras(opt, keras.optimizers.Lion(), var)
        with pytest.raises(ValueError, match="dtype float32"):
            interop.to_keras(opt, opt.init(np.zeros(6)), kopt, var)
        np.testing.assert_array_equal(interop.from_keras(opt, kopt, var).s, state.s)  # nothing was assigned


def test_importing_rmsnum_and_interop_imports_no_framework():
    code = ("import sys, rmsnum, rmsnum.interop; "
            "print(sorted({'torch', 'jax', 'keras', 'optax', 'tensorflow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_interop_refuses_what_is_not_an_rmsnum_optimizer():
    with pytest.raises(ValueError, match="opt must be an RMSProp or Adam with an optax counterpart"):
        interop.from_optax(rn.SGD(lr=0.1), (), np.zeros(2))
