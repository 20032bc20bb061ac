"""simulate(schedule=...): per-step hyperparameters on the compiled and reference backends, and bad input."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rmsnum as rn
from conftest import OPTIMIZERS, RTOL
from rmsnum._neutral import ONE, ZERO
from rmsnum.backends import cpu
from oracle import reference_step  # tests/ is on sys.path

STEPS = 60
OBJECTIVES = (rn.rotated_quadratic_2d(), rn.Quadratic([1.0, 2.0, 3.0], [1.0, 0.0, -1.0]))  # a dense A, a diagonal
T = np.arange(STEPS)

# Per optimizer of conftest.OPTIMIZERS: a schedule of several of its hyperparameters (arrays of STEPS values).
SCHEDULES = {
    "rmsprop": {"lr": 0.1 / np.sqrt(T + 1), "gamma": np.linspace(0.5, 0.99, STEPS)},
    "rmsprop-centered": {"lr": 0.05 * 0.97**T, "gamma": np.linspace(0.95, 0.8, STEPS),
                         "eps": np.geomspace(1e-6, 1e-3, STEPS)},
    "rmsprop-momentum-torch": {"lr": 0.02 / (1 + T / 10), "momentum": np.linspace(0.5, 0.95, STEPS)},
    "rmsprop-momentum-keras": {"momentum": np.linspace(0.9, 0.1, STEPS)},
    "rmsprop-nesterov": {"lr": np.where(T % 10 < 5, 0.02, 0.005), "momentum": np.linspace(0.2, 0.9, STEPS)},
    "preset-torch": {"lr": 0.01 * (1 + np.cos(np.pi * T / STEPS)) + 1e-4, "gamma": np.linspace(0.9, 0.99, STEPS),
                     "weight_decay": np.linspace(0.0, 0.1, STEPS)},
    "preset-keras": {"lr": np.linspace(0.02, 0.002, STEPS), "weight_decay": np.where(T % 7 < 3, 0.0, 0.05)},
    "preset-optax": {"lr": 0.01 / np.sqrt(T + 1)},  # bias correction with a constant gamma
    "sgd": {"lr": np.linspace(0.2, 0.01, STEPS)},
    "momentum": {"lr": 0.02 * 0.98**T, "beta": np.linspace(0.5, 0.9, STEPS)},
    "adagrad": {"lr": np.where(T < 30, 0.5, 0.1), "eps": np.geomspace(1e-6, 1e-2, STEPS)},
    "adam": {"lr": 0.05 / np.sqrt(T + 1), "eps": np.geomspace(1e-8, 1e-4, STEPS)},
}


def _as_callables(schedule):
    return {name: (lambda t, values=values: float(values[t])) for name, values in schedule.items()}


def _assert_close(a, b, dtype):
    rtol = RTOL[dtype]
    np.testing.assert_allclose(a.x, b.x, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.loss, b.loss, rtol=rtol, atol=rtol)
    assert a.diverged_at == b.diverged_at


@pytest.mark.parametrize("form", ["array", "callable"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_compiled_matches_reference(name, form, dtype):
    opt = OPTIMIZERS[name]
    schedule = SCHEDULES[name] if form == "array" else _as_callables(SCHEDULES[name])
    for objective in OBJECTIVES:
        x0 = np.linspace(-2, 3, objective.dim)
        traj = rn.simulate(opt, objective, x0, STEPS, dtype=dtype, schedule=schedule)
        ref = rn.simulate(opt, objective, x0, STEPS, dtype=dtype, backend="reference", schedule=schedule)
        _assert_close(traj, ref, dtype)
        for slot in opt.slots:
            np.testing.assert_allclose(getattr(traj.state, slot), getattr(ref.state, slot),
                                       rtol=RTOL[dtype], atol=RTOL[dtype])
        assert traj.state.t == ref.state.t == STEPS


@pytest.mark.parametrize("name", ["rmsprop", "rmsprop-momentum-torch", "preset-torch", "preset-optax", "adam"])
def test_schedule_changes_the_run(name):
    opt = OPTIMIZERS[name]
    plain = rn.simulate(opt, rn.quadratic_2d(), (1.0, -1.0), STEPS)
    scheduled = rn.simulate(opt, rn.quadratic_2d(), (1.0, -1.0), STEPS, schedule=SCHEDULES[name])
    assert not np.array_equal(plain.x, scheduled.x)


def test_update_t_uses_entry_t():
    """SGD on f = x**2 / 2 (h = 1): x_{t+1} = (1 - lr_t) x_t exactly in binary fractions."""
    lr = np.array([0.5, 0.25, 0.75, 0.5])
    traj = rn.simulate(rn.SGD(lr=0.1), rn.Quadratic([1.0]), (8.0,), 4, schedule={"lr": lr})
    np.testing.assert_array_equal(traj.x[:, 0], [8.0, 4.0, 3.0, 0.75, 0.375])


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("name", ["rmsprop", "rmsprop-centered", "preset-torch", "preset-optax", "sgd", "momentum",
                                  "adagrad", "adam"])
def test_constant_schedule_equals_no_schedule_bit_for_bit(name, backend, dtype):
    opt = OPTIMIZERS[name]
    constant = {field: np.full(STEPS, getattr(opt, field)) for field in SCHEDULES[name]}
    plain = rn.simulate(opt, rn.rotated_quadratic_2d(), (1.0, -2.0), STEPS, dtype=dtype, backend=backend)
    for schedule in (constant, _as_callables(constant)):
        traj = rn.simulate(opt, rn.rotated_quadratic_2d(), (1.0, -2.0), STEPS, dtype=dtype, backend=backend,
                           schedule=schedule)
        np.testing.assert_array_equal(traj.x, plain.x)
        np.testing.assert_array_equal(traj.loss, plain.loss)
        for slot in opt.slots:
            np.testing.assert_array_equal(getattr(traj.state, slot), getattr(plain.state, slot))
        assert (traj.state.d1, traj.state.d2) == (plain.state.d1, plain.state.d2)


@pytest.mark.parametrize("schedule", [None, {}])
def test_no_schedule(schedule):
    opt = rn.RMSProp(lr=0.4)
    plain = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 30)
    traj = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 30, schedule=schedule)
    np.testing.assert_array_equal(traj.x, plain.x)
    assert traj.schedule is None and traj.provenance["schedule"] is None


@pytest.mark.parametrize("decoupled", [False, True])
def test_weight_decay_zero_at_some_steps(decoupled, dtype):
    """A coefficient that is ZERO at some steps and a number at others (weight decay
    switched off and on) runs as a number throughout, and matches the reference."""
    opt = rn.RMSProp(lr=0.05, weight_decay=0.1, decoupled_weight_decay=decoupled)
    wd = np.where(T % 20 < 10, 0.0, 0.2)
    obj = rn.Quadratic([0.5, 2.0, 4.0], [1.0, -1.0, 0.5])
    traj = rn.simulate(opt, obj, (1.0, 2.0, -3.0), STEPS, dtype=dtype, schedule={"weight_decay": wd})
    ref = rn.simulate(opt, obj, (1.0, 2.0, -3.0), STEPS, dtype=dtype, backend="reference",
                      schedule={"weight_decay": wd})
    _assert_close(traj, ref, dtype)
    # While weight decay is off, the steps are those of the optimizer without it.
    off = rn.simulate(rn.RMSProp(lr=0.05, decoupled_weight_decay=decoupled), obj, (1.0, 2.0, -3.0), 10, dtype=dtype)
    np.testing.assert_array_equal(traj.x[:11], off.x)


def test_coefficient_table_mixes_neutrals_and_numbers():
    rows = [(ZERO, ONE, 0.5), (ZERO, ONE, 0.25), (0.125, ONE, 0.75)]
    C, like = cpu.coefficient_table(rows, np.float32)
    assert like[1] is ONE and not isinstance(like[0], type(ZERO))
    np.testing.assert_array_equal(C, np.array([[0.0, 0.0, 0.125], [0.5, 0.25, 0.75]], np.float32))
    C1, like1 = cpu.coefficient_table([(ZERO, ONE, 0.5)], np.float64)
    assert like1[:2] == (ZERO, ONE) and like1[0] is ZERO and C1.tolist() == [[0.5]]


def test_trajectory_carries_the_schedule():
    opt = rn.RMSProp(lr=0.4)
    traj = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 5, schedule={"lr": [1, 0.5, 0.25, 0.125, 0.0625],
                                                                          "gamma": lambda t: 0.9})
    assert traj.optimizer is opt
    assert list(traj.schedule) == ["lr", "gamma"] and traj.provenance["schedule"] == ["gamma", "lr"]
    assert traj.schedule["lr"].dtype == np.float64 and traj.schedule["lr"].tolist() == [1, 0.5, 0.25, 0.125, 0.0625]
    np.testing.assert_array_equal(traj.schedule["gamma"], np.full(5, 0.9))


def test_schedule_array_is_copied():
    lr = np.full(5, 0.1)
    traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 5, schedule={"lr": lr})
    lr[:] = 0.3
    assert np.all(traj.schedule["lr"] == 0.1)


def test_zero_steps_never_calls_the_schedule():
    def boom(t):
        raise AssertionError("called")

    traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 0, schedule={"lr": boom})
    assert traj.x.shape == (1, 2) and traj.schedule["lr"].shape == (0,)
    traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 0, schedule={"lr": []})
    assert traj.schedule["lr"].shape == (0,)


def test_decaying_lr_shrinks_the_period_two_orbit():
    """Constant lr ends on x_i = +-lr/2 (DESIGN.md); lr_t = 0.4/sqrt(t+1) ends near lr_t/2."""
    steps = 4000
    const = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), steps)
    decay = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), steps,
                        schedule={"lr": lambda t: 0.4 / math.sqrt(t + 1)})
    np.testing.assert_allclose(np.abs(const.x[-10:]), 0.2, rtol=1e-3)
    assert np.all(np.abs(decay.x[-10:]) <= 0.4 / math.sqrt(steps - 10) / 2 * 1.01)
    assert decay.loss[-1] < 1e-3 * const.loss[-1]


def test_divergence_under_a_schedule_is_reported_alike():
    lr = np.where(T < 20, 0.05, 1e6)
    traj = rn.simulate(rn.SGD(lr=0.05), rn.quadratic_2d(), (1.0, 1.0), STEPS, schedule={"lr": lr})
    ref = rn.simulate(rn.SGD(lr=0.05), rn.quadratic_2d(), (1.0, 1.0), STEPS, schedule={"lr": lr}, backend="reference")
    assert traj.diverged_at is not None and traj.diverged_at > 20
    assert traj.diverged_at == ref.diverged_at and traj.state.t == ref.state.t == traj.diverged_at


@given(data=st.data(), steps=st.integers(1, 40),
       name=st.sampled_from(["rmsprop", "rmsprop-centered", "rmsprop-nesterov", "preset-torch", "preset-keras",
                             "preset-optax", "sgd", "momentum", "adagrad", "adam"]),
       dtype=st.sampled_from(["float64", "float32"]))
def test_property_compiled_equals_reference(data, steps, name, dtype):
    """Random schedules: the compiled run is a loop of ``step`` with each update's
    optimizer, the reference run a loop of the reference's step, both bit for bit,
    and from the same point every compiled step agrees with the reference's step.

    Whole trajectories are compared in the tests above: over random ones the
    one-rounding differences between the two formulas can grow without bound
    where RMSProp's step size lr/sqrt(s) is large. Centered variants skip the
    step-by-step comparison: their s - g_avg**2 cancels whenever the gradients
    are steady, which makes a rounding of s a large error of the step."""
    opt = OPTIMIZERS[name]
    ranges = {"lr": (1e-3, 0.3), "gamma": (0.0, 0.999), "momentum": (0.05, 0.95), "beta": (0.0, 0.95),
              "eps": (1e-8, 1e-2), "weight_decay": (0.0, 0.5)}
    choices = [n for n in ranges if n in opt.hyperparameters() and not (n == "momentum" and opt.momentum == 0)
               and not (n == "gamma" and opt.decays() is not None)]
    names = data.draw(st.lists(st.sampled_from(choices), min_size=1, unique=True))
    columns, schedule = {}, {}
    for n in names:
        low, high = ranges[n]
        # Values of the run's dtype (a float64 subnormal would round to 0 in float32, which is refused).
        values = st.floats(low, high, exclude_min=n in ("lr", "eps"))
        if dtype == "float32":
            values = values.map(lambda value: float(np.float32(value)))
        columns[n] = data.draw(st.lists(values, min_size=steps, max_size=steps))
        schedule[n] = columns[n] if data.draw(st.booleans()) else (lambda t, values=columns[n]: values[t])
    objective = rn.Quadratic([0.2, 4.0, 1.0], [0.5, 0.0, -1.0])  # diagonal: g = A * x - b as the kernel computes it
    x0 = data.draw(st.tuples(*[st.floats(-5, 5)] * 3))
    traj = rn.simulate(opt, objective, x0, steps, dtype=dtype, schedule=schedule)
    ref = rn.simulate(opt, objective, x0, steps, dtype=dtype, backend="reference", schedule=schedule)
    last = steps if traj.diverged_at is None else traj.diverged_at  # both loops stop at a divergence
    last_ref = steps if ref.diverged_at is None else ref.diverged_at

    A, b = objective.A.astype(dtype), objective.b.astype(dtype)
    x, x_ref = traj.x[0].copy(), traj.x[0].copy()
    state, state_ref = opt.init(x), opt.init(x)
    tol = RTOL[dtype] * 10
    for t in range(max(last, last_ref)):
        opt_t = dataclasses.replace(opt, **{n: columns[n][t] for n in names})
        if t < last_ref:
            reference_step(opt_t, x_ref, A * x_ref - b, state_ref)
            np.testing.assert_array_equal(x_ref, ref.x[t + 1])
        if t >= last:
            continue
        before, before_state = x.copy(), state.copy()
        opt_t.step(x, A * x - b, state)
        np.testing.assert_array_equal(x, traj.x[t + 1])
        if not getattr(opt, "centered", False) and np.all(np.isfinite(x)):
            reference_step(opt_t, before, A * before - b, before_state)  # the reference's step from x
            scale = np.abs(traj.x[t]) + np.abs(x) + np.abs(before)
            assert np.all(np.abs(before - x) <= tol * scale + np.finfo(dtype).tiny), t


# --------------------------------------------------------------------------- bad input

ARGS = dict(opt=rn.RMSProp(lr=0.1), objective=rn.quadratic_2d(), x0=(1.0, 1.0), steps=5)
GOOD = [0.1, 0.1, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(schedule=[("lr", GOOD)]), TypeError, "schedule must be a dict"),
    (dict(schedule="lr"), TypeError, "schedule must be a dict"),
    (dict(schedule={"learning_rate": GOOD}), ValueError, r"schedule\['learning_rate'\].*lr, gamma, eps"),
    (dict(schedule={"centered": [True] * 5}), ValueError, r"schedule\['centered'\].*numeric"),
    (dict(schedule={"preset": ["d2l"] * 5}), ValueError, r"schedule\['preset'\]"),
    (dict(schedule={"lr": [True] * 5}), TypeError, r"schedule\['lr'\].*real numbers.*bool"),
    (dict(schedule={"lr": ["0.1"] * 5}), TypeError, r"schedule\['lr'\].*real numbers"),
    (dict(schedule={"lr": [0.1, None, 0.1, 0.1, 0.1]}), TypeError, r"schedule\['lr'\].*real numbers"),
    (dict(schedule={"lr": [0.1, 0.1, [0.1], 0.1, 0.1]}), TypeError, r"schedule\['lr'\].*real numbers"),
    (dict(schedule={"lr": np.full(5, 0.1 + 0j)}), TypeError, r"schedule\['lr'\].*real numbers"),
    (dict(schedule={"lr": None}), TypeError, r"schedule\['lr'\]"),
    (dict(schedule={"lr": lambda t: "0.1"}), TypeError, r"schedule\['lr'\] must return a real number.*step 0"),
    (dict(schedule={"lr": lambda t: None if t == 3 else 0.1}), TypeError, r"schedule\['lr'\].*None.*step 3"),
    (dict(schedule={"lr": lambda t: t == 0}), TypeError, r"schedule\['lr'\].*bool"),
    (dict(schedule={"lr": lambda t: np.array([0.1])}), TypeError, r"schedule\['lr'\].*ndarray"),
    (dict(schedule={"lr": GOOD[:4]}), ValueError, r"schedule\['lr'\].*shape \(5,\).*\(4,\)"),
    (dict(schedule={"lr": GOOD + [0.1]}), ValueError, r"schedule\['lr'\].*\(6,\)"),
    (dict(schedule={"lr": [GOOD]}), ValueError, r"schedule\['lr'\].*\(1, 5\)"),
    (dict(schedule={"lr": 0.1}), ValueError, r"schedule\['lr'\].*shape \(\)"),
    (dict(schedule={"lr": [0.1, 0.1, math.nan, 0.1, 0.1]}), ValueError, r"schedule\['lr'\] must be finite.*step 2"),
    (dict(schedule={"lr": lambda t: math.inf if t == 4 else 0.1}), ValueError,
     r"schedule\['lr'\] must be finite.*step 4"),
    (dict(schedule={"lr": [0.1, 0.1, 0.1, 0.0, 0.1]}), ValueError, r"schedule\['lr'\] at step 3: lr must be in \(0"),
    (dict(schedule={"lr": [0.1, -0.1, 0.1, 0.1, 0.1]}), ValueError, r"schedule\['lr'\] at step 1: lr"),
    (dict(schedule={"gamma": lambda t: 1.0 + t / 10}), ValueError, r"schedule\['gamma'\] at step 1: gamma must be in"),
    (dict(schedule={"lr": GOOD, "eps": [1e-6, 1e-6, 1e-6, 1e-6, 0.0]}), ValueError,
     r"schedule\['lr'\], schedule\['eps'\] at step 4: eps"),
    (dict(opt=rn.RMSProp(lr=0.1, momentum=0.9), schedule={"momentum": [0.9, 0.5, 0.0, 0.5, 0.9]}), ValueError,
     r"schedule\['momentum'\] at step 2 changes the optimizer's state slots"),
    (dict(opt=rn.RMSProp(lr=0.1), schedule={"momentum": [0.0, 0.5, 0.5, 0.5, 0.5]}), ValueError,
     r"schedule\['momentum'\] at step 1 changes the optimizer's state slots"),
    (dict(opt=rn.RMSProp(lr=0.1, momentum=0.9, nesterov=True), schedule={"momentum": [0.9, 0.0, 0.9, 0.9, 0.9]}),
     ValueError, r"schedule\['momentum'\] at step 1: nesterov=True needs momentum"),
    (dict(opt=rn.Momentum(lr=0.1), schedule={"beta": [0.9, 0.9, 1.0, 0.9, 0.9]}), ValueError,
     r"schedule\['beta'\] at step 2: beta must be in"),
    (dict(schedule={"initial_s": [1.0] * 5}), ValueError, r"schedule\['initial_s'\] at step 0 changes the initial"),
    (dict(opt=rn.RMSProp.optax(0.1, bias_correction=True), schedule={"gamma": np.linspace(0.9, 0.99, 5)}),
     ValueError, r"schedule\['gamma'\] at step 1 changes the bias-correction decays.*not supported"),
    (dict(opt=rn.Adam(lr=0.1), schedule={"beta1": [0.9, 0.9, 0.9, 0.8, 0.9]}), ValueError,
     r"schedule\['beta1'\] at step 3 changes the bias-correction decays.*not supported"),
    (dict(opt=rn.Adam(lr=0.1), schedule={"beta2": lambda t: 0.999 - t * 1e-3}), ValueError,
     r"schedule\['beta2'\] at step 1 changes the bias-correction decays"),
    (dict(schedule={"lr": GOOD}, backend="cuda"), ValueError, r"schedule.*\"cpu\" and \"reference\", not \"cuda\""),
    (dict(opt=rn.SGD(lr=0.1), schedule={"gamma": GOOD}), ValueError, r"SGD has no numeric hyperparameter 'gamma'.*lr"),
    (dict(opt=rn.Adagrad(lr=0.1), schedule={1: GOOD}), ValueError, r"schedule\[1\].*lr, eps"),
])
def test_bad_schedule(kwargs, error, message):
    args = dict(ARGS)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        rn.simulate(args.pop("opt"), args.pop("objective"), args.pop("x0"), args.pop("steps"), **args)


def test_constant_schedule_through_bias_correction_is_accepted():
    """A gamma schedule that does not change with t keeps the decays: allowed, even if
    it differs from the optimizer's own gamma."""
    opt = rn.RMSProp.optax(0.05, bias_correction=True)
    traj = rn.simulate(opt, rn.quadratic_2d(), (1.0, 1.0), 10, schedule={"gamma": [0.8] * 10})
    same = rn.simulate(rn.RMSProp.optax(0.05, decay=0.8, bias_correction=True), rn.quadratic_2d(), (1.0, 1.0), 10)
    np.testing.assert_array_equal(traj.x, same.x)
    ref = rn.simulate(opt, rn.quadratic_2d(), (1.0, 1.0), 10, schedule={"gamma": [0.8] * 10}, backend="reference")
    _assert_close(traj, ref, "float64")


def test_schedule_checks_come_before_the_run():
    """A bad value at the last step raises before any update: the callable is
    evaluated for every step, in order, before anything runs."""
    calls = []

    def lr(t):
        calls.append(t)
        return 0.1 if t < 4 else -1.0

    with pytest.raises(ValueError, match=r"schedule\['lr'\] at step 4"):
        rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 5, schedule={"lr": lr})
    assert calls == [0, 1, 2, 3, 4]


def _run_block(opt, C, like, x0, steps, dt):
    """cpu.run_objective on one block of C.shape[-1] lanes of ``opt`` on quadratic_2d; returns the final x (2, w)."""
    w = C.shape[-1]
    x = np.ascontiguousarray(np.broadcast_to(np.asarray(x0, dt)[:, None], (2, w)))[np.newaxis]
    slots = tuple(np.full_like(x, opt._initial(slot)) if slot in opt.slots else None for slot in opt.spec.slots)
    obj = rn.quadratic_2d()
    cpu.run_objective(opt.rule, None, x, slots, None, None, C, like, (obj.A.astype(dt), obj.b.astype(dt)), 0.0, None,
                      obj.f_star, np.empty(0, dt), steps, 1, None, None, np.empty((1, w), dt),
                      np.empty((1, w), np.int64), None)
    return x[0]


def test_kernel_runs_a_block_of_lanes_each_with_its_own_schedule(dtype):
    """The step axis in a block of cpu.LANES lanes (the sweep's SIMD kernel): each
    lane equals simulate() with that lane's schedule, bit for bit; a step axis of
    one row equals the table without a step axis."""
    dt = np.dtype(dtype)
    steps, w = 30, cpu.LANES
    opt = rn.RMSProp(lr=0.1, momentum=0.5)
    base = np.geomspace(0.01, 0.5, w)
    lr = base[None, :] / np.sqrt(np.arange(steps) + 1.0)[:, None]  # (steps, lanes)
    rows = [[dataclasses.replace(opt, lr=float(lr[t, j])).coefficients(dt) for j in range(w)] for t in range(steps)]
    tables = [cpu.coefficient_table(row, dt) for row in rows]
    like = tables[0][1]
    C = np.ascontiguousarray(np.stack([table[0] for table in tables]))[np.newaxis]  # (1, steps, k, w)
    final = _run_block(opt, C, like, (-5.0, -2.0), steps, dt)
    for j in (0, 17, w - 1):
        traj = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), steps, dtype=dt, schedule={"lr": lr[:, j]})
        np.testing.assert_array_equal(final[:, j], traj.x[-1])
    one_row = _run_block(opt, np.ascontiguousarray(C[:, :1]), like, (-5.0, -2.0), steps, dt)
    no_axis = _run_block(opt, np.ascontiguousarray(C[:, 0]), like, (-5.0, -2.0), steps, dt)
    np.testing.assert_array_equal(one_row, no_axis)


def test_float32_scheduled_kernel_does_no_float64_arithmetic():
    import re

    opt = rn.RMSProp(lr=0.1, centered=True, momentum=0.5, bias_correction=True, weight_decay=0.1)
    dt = np.dtype(np.float32)
    rows = [dataclasses.replace(opt, lr=lr, weight_decay=wd).coefficients(dt) for lr, wd in [(0.1, 0.0), (0.2, 0.1)]]
    C, like = cpu.coefficient_table(rows, dt)
    kernel = cpu._instantiate(cpu._run_objective_template, opt.rule, cache=False, lanes=4)
    x = np.ones((1, 2, 4), dt)
    state = tuple(np.zeros_like(x) for _ in range(3))
    C4 = np.ascontiguousarray(np.broadcast_to(C.T[:, :, None], (2, C.shape[0], 4)))[np.newaxis]
    kernel(x, state, np.zeros((1, 2, 4), dt), np.full((1, 4, 4), 0.5, dt), C4, like,
           (np.array([0.2, 4.0], dt), np.zeros(2, dt)), dt.type(1), dt.type(0.5), dt.type(0), None, dt.type(0),
           np.array([1e-3], dt), 5, 1, np.empty((1, 6, 4), dt), np.empty((1, 0, 2, 4), dt), np.empty((1, 4), dt),
           np.empty((1, 4), np.int64), np.full((1, 1, 4), -1, np.int64))
    ir = "\n".join(kernel.inspect_llvm().values())
    assert re.findall(r"= f(?:add|sub|mul|div) float ", ir), "no float32 arithmetic found: test is broken"
    assert not re.findall(r"= f(?:add|sub|mul|div)(?: \w+)* double |fpext|llvm\.sqrt\.f64", ir)
