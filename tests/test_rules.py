"""The compiled rules against the NumPy reference, and properties of the kernels."""

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rmsnum as rn
from rmsnum import rules
from rmsnum._neutral import ONE
from rmsnum.backends import cpu, reference
from oracle import reference_step  # tests/ is on sys.path
from conftest import OPTIMIZERS, RTOL


def _problem(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).astype(dtype)
    grads = rng.normal(size=(30, n)).astype(dtype)
    return x, grads


def _run(step, opt, x, grads):
    x = x.copy()
    state = opt.init(x)
    for g in grads:
        step(x, g, state)
    return x, state


def _assert_close(actual, expected, dtype, scale=1.0):
    rtol = RTOL[np.dtype(dtype).name]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def test_every_rule_matches_reference(optimizer, dtype):
    x0, grads = _problem(257, dtype)
    x, state = _run(optimizer.step, optimizer, x0, grads)
    x_ref, state_ref = _run(lambda x, g, s: reference_step(optimizer, x, g, s), optimizer, x0, grads)
    assert x.dtype == np.dtype(dtype)
    _assert_close(x, x_ref, dtype)
    for slot in optimizer.slots:
        _assert_close(getattr(state, slot), getattr(state_ref, slot), dtype)
    assert state.t == state_ref.t == len(grads)


@pytest.mark.parametrize("name", ["rmsprop", "rmsprop-everything", "preset-torch", "adam"])
def test_parallel_equals_serial_bit_for_bit(name, dtype):
    opt = OPTIMIZERS[name]
    n = cpu.PARALLEL_THRESHOLD + 1001
    x0, grads = _problem(n, dtype)
    x_par, st_par = _run(opt.step, opt, x0, grads[:5])
    k = cpu.kernels_for(opt.rule)

    def serial_step(x, g, state):
        d1, d2 = opt._next_debias(state)
        one = x.dtype.type(1)
        r1, r2 = (ONE, ONE) if opt.decays() is None else (one / d1, one / d2)
        k.step_serial(x, g, tuple(getattr(state, n) for n in opt.spec.slots), r1, r2, opt.coefficients(x.dtype))
        state.d1, state.d2, state.t = d1, d2, state.t + 1

    x_ser, st_ser = _run(serial_step, opt, x0, grads[:5])
    assert np.array_equal(x_par, x_ser)
    for slot in opt.slots:
        assert np.array_equal(getattr(st_par, slot), getattr(st_ser, slot))


def test_step_works_on_any_shape(dtype):
    opt = rn.RMSProp(lr=0.1)
    x0, grads = _problem(24, dtype)
    x_flat, _ = _run(opt.step, opt, x0, grads)
    x_3d, state = _run(opt.step, opt, x0.reshape(2, 3, 4), grads.reshape(-1, 2, 3, 4))
    assert state.s.shape == (2, 3, 4)
    assert np.array_equal(x_3d.ravel(), x_flat)
    scalar = np.array(2.0, dtype=dtype)
    opt.step(scalar, np.array(1.0, dtype=dtype), opt.init(scalar))
    assert scalar.shape == () and scalar < 2.0


finite = dict(allow_nan=False, allow_infinity=False)


# Centered variants subtract g_avg**2 from s: for a repeated gradient the difference cancels to
# rounding and the step divides by sqrt(rounding + eps), an ill-conditioned comparison; the table
# test above covers them with random gradients.
WELL_CONDITIONED = sorted(k for k, o in OPTIMIZERS.items() if not getattr(o, "centered", False))


@given(
    data=st.data(),
    name=st.sampled_from(WELL_CONDITIONED),
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_property_one_step_matches_reference(data, name, dtype):
    opt = OPTIMIZERS[name]
    n = data.draw(st.integers(1, 40))
    elems = st.floats(-1e3, 1e3, width=32, **finite)
    x = data.draw(hnp.arrays(dtype, n, elements=elems))
    g = data.draw(hnp.arrays(dtype, n, elements=elems))
    steps = data.draw(st.integers(1, 4))
    x_k, _ = _run(opt.step, opt, x, [g] * steps)
    path = [x.copy()]  # the reference's iterates, to measure each step's change
    state = opt.init(path[0])
    for _ in range(steps):
        path.append(path[-1].copy())
        reference_step(opt, path[-1], g, state)
    x_r = path[-1]
    # The kernel and the reference compute the same formula with the operations in a different
    # order (lr * (g / den) against (lr * g) / den, s / (1 - gamma**t) against s * r, ...), so they
    # may differ by rounding only. Per step t, with the change d_t = x_t - x_(t-1):
    # - the step: at most K = 20 rounded operations lie on its path (the longest, the RMSProp
    #   formula with weight decay, bias correction, momentum and Nesterov, has 20; the others
    #   fewer), each a relative error <= u = eps/2 (eps the dtype's machine epsilon) that enters
    #   d_t with a factor <= 1 (products, quotients, sums of like-signed terms; sqrt halves it;
    #   centered variants, whose s - g_avg**2 cancels, are excluded above). Two implementations:
    #   |d_kernel - d_ref| <= 2 K u |d_t| = K eps |d_t|.
    # - x_t = x_(t-1) - d_t is rounded in both: steps a few ulps apart can round to neighbouring
    #   numbers, one ulp of x_t (<= eps |x_t|) more. This is the only term in |x|, the resolution
    #   of x itself (a tolerance of 10 * RTOL * max|x|, as before, is ~800 of these in float32:
    #   0.11 at |x| = 1e3, 70 % of an RMSProp step of 0.16).
    # - gradual underflow (subnormal values): an operation's absolute error is <= eps * tiny / 2,
    #   amplified by at most lr / den <= 0.05 / 1e-8 (Adam) < 1 / eps: < tiny per operation.
    # A state's error carries into later steps with a factor <= 1, and x's only through coupled
    # weight decay (the step moves by <= lr wd / den times it, < 1 unless g + wd x cancels to
    # ~sqrt(eps), which these draws do not reach), so the bounds add up over the steps.
    # A step 1 % off fails it wherever |x| < |d| / (100 eps): |x| < 1.3e4 for an RMSProp step in float32.
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    K = 20
    prev, cur = np.array(path[:-1], np.float64), np.array(path[1:], np.float64)
    tol = np.sum(K * eps * np.abs(cur - prev) + eps * np.abs(cur) + K * tiny, axis=0)
    err = np.abs(x_k.astype(np.float64) - x_r.astype(np.float64))
    assert np.all(err <= tol), f"{name} {dtype}: |kernel - reference| {err} exceeds {tol}"


@given(x=st.floats(-1e6, 1e6, **finite), g=st.floats(-1e6, 1e6, **finite),
       gamma=st.floats(0, 1), lr=st.floats(1e-6, 10))
def test_property_chapter_rule_is_the_chapter(x, g, gamma, lr):
    """With the book's options the general formula is the book's two lines, to the bit."""
    opt = rn.RMSProp(lr=lr, gamma=gamma)
    new_x, new_s, _, _ = rules.rmsprop(x, g, 0.0, 0.0, 0.0, 1.0, 1.0, opt.coefficients())
    s = gamma * 0.0 + (1 - gamma) * (g * g)
    assert new_s == s
    assert new_x == x - (lr * g) / np.sqrt(s + 1e-6)


@given(seed=st.integers(0, 2**63 - 1), config=st.integers(0, 2**40), step=st.integers(0, 2**40),
       coord=st.integers(0, 2**20))
def test_property_gaussian_is_a_pure_function(seed, config, step, coord):
    compiled = cpu._gaussian
    a = compiled(np.uint64(seed), np.uint64(config), np.uint64(step), np.uint64(coord))
    with np.errstate(over="ignore"):
        b = rules.gaussian(np.uint64(seed), np.uint64(config), np.uint64(step), np.uint64(coord))
    assert a == b and np.isfinite(a)


def test_gaussian_is_standard_normal():
    with np.errstate(over="ignore"):
        z = np.array([cpu._gaussian(np.uint64(7), np.uint64(0), np.uint64(t), np.uint64(i))
                      for t in range(200) for i in range(50)])
    from scipy import stats

    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    assert stats.kstest(z, "norm").pvalue > 1e-3


@pytest.mark.parametrize("name", ["rmsprop-everything", "adam", "preset-adam-keras", "adagrad"])
def test_float32_kernels_do_no_float64_arithmetic(name):
    """Literals would promote float32 to float64; the rules take every constant in the working dtype."""
    opt = OPTIMIZERS[name]
    x = np.ones(8, np.float32)
    state = opt.init(x)
    kernel = cpu._instantiate(cpu._step_template, opt.rule, cache=False)  # cached code cannot be inspected
    kernel(x, x.copy(), tuple(getattr(state, n) for n in opt.spec.slots), np.float32(1), np.float32(1),
           opt.coefficients(np.float32))
    ir = kernel.inspect_llvm(kernel.signatures[0])
    assert re.findall(r"= f(?:add|sub|mul|div) float ", ir), "no float32 arithmetic found: test is broken"
    assert not re.findall(r"= f(?:add|sub|mul|div)(?: \w+)* double |fpext|llvm\.sqrt\.f64", ir)


def test_debias_recurrence_is_one_minus_power():
    d = 0.0
    for t in range(1, 50):
        d = rules.debias(d, 0.9, 1 - 0.9)
        assert d == pytest.approx(1 - 0.9**t, rel=1e-14)


def test_the_registry_is_the_one_list_of_rules():
    """Every rule of the registry has a reference, a kernels export, an optimizer class and a row
    in the test table; each optimizer's coefficients are named by its entry and its decays are
    among them."""
    from rmsnum import kernels as rk

    assert set(reference._RULES) == set(rules.REGISTRY)
    covered = {opt.name for opt in OPTIMIZERS.values()}
    assert covered == set(rules.REGISTRY)
    assert {cls.rule.__name__ for cls in rn.Optimizer.classes} == set(rules.REGISTRY)
    for name, rule in rules.REGISTRY.items():
        assert getattr(rk, name) is rule.update and rules.lookup(rule.update) is rule
        assert set(rule.decays) <= set(rule.coefficients)
    for opt in OPTIMIZERS.values():
        assert len(opt.coefficients()) == len(opt.spec.coefficients)
        assert set(opt.slots) <= set(opt.spec.slots)
    with pytest.raises(ValueError, match="not a rule"):
        rules.lookup(len)


def test_absent_slots_cost_nothing_and_take_zero():
    """A slot without array gets ZERO: adam's max(ZERO, s) is s exactly, so Adam without
    AMSGrad equals AMSGrad on a run where s never falls (a constant gradient)."""
    from rmsnum._neutral import ZERO

    c = rn.Adam(lr=0.1).coefficients()
    x, s, m, v_max = rules.adam(1.0, 2.0, 0.0, 0.0, ZERO, 10.0, 1000.0, c)
    assert v_max == s and x == pytest.approx(1.0 - 0.1 * (0.2 * 10) / (math.sqrt(s * 1000) + 1e-8), rel=1e-15)
