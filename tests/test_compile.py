"""The compile budget: changing only hyperparameter values (or the start, the step count, the
seeds) never compiles a kernel again; only an option pattern, a rule, a dtype or a shape class does.

Compilations are counted with Numba's own event stream (``numba:compile``, one START event per
signature compiled, including the helpers a kernel compiles on first use; a kernel loaded from
the disk cache fires none)."""

from __future__ import annotations

import numpy as np
import pytest
from numba.core import event

import rmsnum as rn


def compiles(run) -> list[str]:
    """The dispatchers compiled while ``run()`` runs (one name per signature)."""
    with event.install_recorder("numba:compile") as recorder:
        run()
    return [str(e.data.get("dispatcher")) for _, e in recorder.buffer if e.status == event.EventStatus.START]


Q3 = rn.Quadratic([0.5, 2.0, 8.0], [1.0, -1.0, 0.5])


@pytest.mark.parametrize("factory, first, second, fixed", [
    (rn.RMSProp, {"lr": [0.1, 0.2], "gamma": [0.9]}, {"lr": [0.3, 0.5, 0.7], "gamma": [0.8, 0.95]},
     {"momentum": 0.5, "centered": True}),
    (rn.Adam, {"lr": [0.01, 0.1]}, {"lr": [0.2], "beta1": [0.0, 0.5], "beta2": [0.9, 0.99]}, {"amsgrad": True}),
])
def test_two_sweeps_with_other_values_compile_once(factory, first, second, fixed):
    kwargs = dict(record="loss", tol=[1e-3], progress=False)
    rn.sweep(factory, Q3, (1.0, 2.0, -1.0), 30, first, fixed, **kwargs)  # compiles, or loads from the cache
    again = compiles(lambda: rn.sweep(factory, Q3, (0.5, -1.0, 2.0), 45, second, fixed, **kwargs))
    assert again == [], f"a sweep with other values compiled {again}"


def test_two_simulate_calls_with_other_values_compile_once():
    opt = rn.RMSProp(lr=0.1, momentum=0.5, weight_decay=0.01)
    rn.simulate(opt, Q3, (1.0, 2.0, -1.0), 20)
    other = rn.RMSProp(lr=0.37, gamma=0.8, eps=1e-4, momentum=0.9, weight_decay=0.2)
    again = compiles(lambda: rn.simulate(other, Q3, (3.0, 0.0, 1.0), 55))
    assert again == [], f"simulate with other values compiled {again}"
    x = np.linspace(-1, 1, 5)
    state = opt.init(x)
    opt.step(x, x.copy(), state)
    assert compiles(lambda: other.step(x, x.copy(), state)) == []


def test_record_modes_tolerances_and_dimensions_share_one_kernel():
    """What is recorded (nothing, the loss, every k-th step), the tolerances and, for a
    single run, the dimension are run-time values of one kernel, not compilations."""
    opt = rn.RMSProp(lr=0.1, momentum=0.5)
    grid = {"lr": [0.1, 0.2]}
    rn.sweep(rn.RMSProp, Q3, (1.0, 2.0, -1.0), 20, grid, {"momentum": 0.5}, progress=False)
    rn.simulate(opt, Q3, (1.0, 2.0, -1.0), 20)
    others = [
        lambda: rn.sweep(rn.RMSProp, Q3, (1.0, 2.0, -1.0), 20, grid, {"momentum": 0.5}, record="loss",
                         progress=False),
        lambda: rn.sweep(rn.RMSProp, Q3, (1.0, 2.0, -1.0), 20, grid, {"momentum": 0.5}, record=3,
                         tol=[1e-2, 1e-4], progress=False),
        lambda: rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 20),
        lambda: rn.simulate(opt, rn.Quadratic(np.arange(1.0, 13.0)), np.ones(12), 20),
        lambda: rn.simulate(opt, Q3, (1.0, 2.0, -1.0), 20, schedule={"lr": np.linspace(0.1, 0.01, 20)}),
    ]
    for k, run in enumerate(others):
        again = compiles(run)
        assert again == [], f"call {k} compiled {again}"


def test_option_sets_of_a_rule_share_the_single_run_kernel():
    """A single run keeps the slots of options that are off as arrays of zeros (rules.Rule.zero_slots)
    and every coefficient as a number: after one plain RMSProp run, momentum, centering, Nesterov,
    weight decay, the presets, training and a sweep's small groups (blocks of one lane) compile nothing."""
    x0 = (1.0, 2.0, -1.0)
    rn.simulate(rn.RMSProp(lr=0.1), Q3, x0, 20)
    problem = rn.LinearRegression(rn.data.synthetic_regression(n=40, d=2, seed=0))
    rn.train(rn.RMSProp(lr=0.01), problem, 8, 1)
    others = [
        lambda: rn.simulate(rn.RMSProp(lr=0.1, momentum=0.5, centered=True), Q3, x0, 20),
        lambda: rn.simulate(rn.RMSProp(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1), Q3, x0, 20),
        lambda: rn.simulate(rn.RMSProp.torch(lr=0.01, momentum=0.9), Q3, x0, 20),
        lambda: rn.simulate(rn.RMSProp.keras(learning_rate=0.01, centered=True), Q3, x0, 20),
        lambda: rn.train(rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True), problem, 8, 1),
        lambda: rn.sweep(rn.RMSProp, Q3, x0, 20, {"centered": [False, True], "momentum": [0.0, 0.9]},
                         {"lr": 0.1}, progress=False),
    ]
    before = _single_run_kernels()
    for k, run in enumerate(others):
        again = compiles(run)
        assert again == [], f"call {k} compiled {again}"
        # and loaded nothing new from the disk cache either: the same kernels, the same signatures
        assert _single_run_kernels() == before, f"call {k} made another kernel or signature"


def _single_run_kernels() -> tuple:
    """How many CPU kernels this process made, and the signatures of RMSProp's one-lane kernels."""
    from rmsnum.backends import cpu

    rule = rn.RMSProp(lr=0.1).rule
    kernels = (cpu._run_objective_kernel(rule, 1, 0), cpu._train_kernel(rule, 1, 0))
    return (cpu._run_objective_kernel.cache_info().currsize, cpu._train_kernel.cache_info().currsize,
            frozenset(sig for kernel in kernels for sig in kernel.overloads))


def test_an_option_pattern_is_a_compilation_of_its_own():
    """The counter does see compilations: a pattern not compiled before in this process
    (the kernels of a user objective are never cached on disk) compiles."""
    obj = rn.Objective(_square, _square_grad, dim=1, minimum=(0.0,))
    fresh = compiles(lambda: rn.simulate(rn.SGD(lr=0.1), obj, (1.0,), 3))
    assert fresh, "the counter saw no compilation: the test is broken"


def _square(x):
    return x[0] * x[0]


def _square_grad(x, out):
    out[0] = 2 * x[0]
