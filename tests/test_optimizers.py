"""Construction, validation, presets and the guarded in-place step."""

import math

import numpy as np
import pytest

import rmsnum as rn

BAD_HYPERPARAMETERS = [
    (rn.RMSProp, dict(lr=0.0), ValueError, "lr"),
    (rn.RMSProp, dict(lr=-1.0), ValueError, "lr"),
    (rn.RMSProp, dict(lr=math.inf), ValueError, "lr"),
    (rn.RMSProp, dict(lr=math.nan), ValueError, "lr"),
    (rn.RMSProp, dict(lr="0.1"), TypeError, "lr"),
    (rn.RMSProp, dict(lr=True), TypeError, "lr"),
    (rn.RMSProp, dict(lr=0.1, gamma=-0.1), ValueError, "gamma"),
    (rn.RMSProp, dict(lr=0.1, gamma=1.5), ValueError, "gamma"),
    (rn.RMSProp, dict(lr=0.1, eps=0.0), ValueError, "eps"),
    (rn.RMSProp, dict(lr=0.1, eps=-1e-8), ValueError, "eps"),
    (rn.RMSProp, dict(lr=0.1, momentum=1.0), ValueError, "momentum"),
    (rn.RMSProp, dict(lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (rn.RMSProp, dict(lr=0.1, initial_s=-1.0), ValueError, "initial_s"),
    (rn.RMSProp, dict(lr=0.1, weight_decay=-0.1), ValueError, "weight_decay"),
    (rn.RMSProp, dict(lr=0.1, centered=1), TypeError, "centered"),
    (rn.RMSProp, dict(lr=0.1, eps_in_sqrt="yes"), TypeError, "eps_in_sqrt"),
    (rn.RMSProp, dict(lr=0.1, nesterov=True), ValueError, "nesterov"),
    (rn.SGD, dict(lr=0), ValueError, "lr"),
    (rn.Momentum, dict(lr=0.1, beta=1.0), ValueError, "beta"),
    (rn.Adagrad, dict(lr=0.1, eps=0), ValueError, "eps"),
    (rn.Adam, dict(lr=0.1, beta1=1.0), ValueError, "beta1"),
    (rn.Adam, dict(lr=0.1, beta2=-0.1), ValueError, "beta2"),
    (rn.Adam, dict(lr=0.1, eps=math.inf), ValueError, "eps"),
]


@pytest.mark.parametrize("cls, kwargs, error, name", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise_naming_the_argument(cls, kwargs, error, name):
    with pytest.raises(error, match=name):
        cls(**kwargs)


def test_error_message_gives_the_allowed_range():
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        rn.RMSProp(lr=0.1, gamma=1.5)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        rn.RMSProp(lr=0.1, momentum=1)


def test_optimizers_are_frozen_and_hashable():
    opt = rn.RMSProp(lr=0.1)
    with pytest.raises(AttributeError):
        opt.lr = 0.2
    assert opt == rn.RMSProp(lr=0.1) and hash(opt) == hash(rn.RMSProp(lr=0.1))
    assert opt.hyperparameters()["gamma"] == 0.9


def test_integers_are_accepted_as_hyperparameters():
    assert rn.RMSProp(lr=1, gamma=1).gamma == 1.0


@pytest.mark.parametrize("preset, kwargs, expected", [
    (rn.RMSProp.d2l, {}, dict(gamma=0.9, eps=1e-6, eps_in_sqrt=True, initial_s=0.0)),
    (rn.RMSProp.torch, {}, dict(lr=0.01, gamma=0.99, eps=1e-8, eps_in_sqrt=False, lr_in_momentum=False)),
    (rn.RMSProp.keras, {}, dict(lr=0.001, gamma=0.9, eps=1e-7, eps_in_sqrt=True, lr_in_momentum=True,
                                decoupled_weight_decay=True, weight_decay=0.0)),
    (rn.RMSProp.tf1, dict(learning_rate=0.1), dict(gamma=0.9, eps=1e-10, initial_s=1.0, lr_in_momentum=True)),
    (rn.RMSProp.optax, dict(learning_rate=0.1), dict(gamma=0.9, eps=1e-8, initial_s=0.0, momentum=0.0,
                                                     bias_correction=False)),
    (rn.RMSProp.mxnet, {}, dict(lr=0.001, gamma=0.9, eps=1e-8, momentum=0.0)),
    (rn.RMSProp.mxnet, dict(centered=True), dict(momentum=0.9, centered=True, lr_in_momentum=True)),
])
def test_preset_defaults(preset, kwargs, expected):
    opt = preset(**kwargs)
    for name, value in expected.items():
        assert getattr(opt, name) == value, name


def test_preset_arguments_are_validated_under_the_core_names():
    with pytest.raises(ValueError, match="gamma"):
        rn.RMSProp.torch(alpha=1.5)


def test_keras_documented_example():
    """keras.optimizers.RMSprop docs: lr 0.1 on var**2/2 from var = 10 gives 9.683772."""
    opt = rn.RMSProp.keras(learning_rate=0.1)
    for dtype in (np.float32, np.float64):
        var = np.array([10.0], dtype=dtype)
        opt.step(var, var.copy(), opt.init(var))
        assert var[0] == pytest.approx(9.683772, abs=1e-6)


def test_tf1_state_starts_at_one():
    opt = rn.RMSProp.tf1(learning_rate=0.1)
    x = np.array([2.0])
    state = opt.init(x)
    assert state.s[0] == 1.0
    opt.step(x, np.array([3.0]), state)
    s = 0.9 * 1.0 + 0.1 * 9.0
    assert state.s[0] == pytest.approx(s)
    assert x[0] == pytest.approx(2.0 - 0.1 * 3.0 / math.sqrt(s + 1e-10))


def test_init_state_layout(optimizer, dtype):
    x = np.zeros((3, 4), dtype=dtype)
    state = optimizer.init(x)
    assert state.slots == optimizer.slots and state.t == 0
    for slot in state.slots:
        arr = getattr(state, slot)
        assert arr.shape == (3, 4) and arr.dtype == np.dtype(dtype)


def test_state_copy_is_deep():
    opt = rn.RMSProp(lr=0.1, momentum=0.5)
    state = opt.init(np.zeros(3))
    copy = state.copy()
    copy.s[0] = 5
    assert state.s[0] == 0


# Every bad call to step: the error, and a fragment of its message.
def _bad_steps():
    f64 = np.ones(4)
    yield "x list", lambda o, s: ([1.0, 2.0, 3.0, 4.0], f64.copy(), s), TypeError, "x must be a numpy.ndarray"
    yield "x int", lambda o, s: (np.ones(4, np.int64), np.ones(4, np.int64), s), TypeError, "float32 or float64"
    yield "x float16", lambda o, s: (np.ones(4, np.float16), np.ones(4, np.float16), s), TypeError, "float32"
    yield "g dtype", lambda o, s: (f64.copy(), np.ones(4, np.float32), s), TypeError, "g must have the dtype"
    yield "g shape", lambda o, s: (f64.copy(), np.ones(5), s), ValueError, "g must have the shape"
    yield "x strided", lambda o, s: (np.ones(8)[::2], f64.copy(), s), ValueError, "C-contiguous"
    yield "x read-only", lambda o, s: (_read_only(np.ones(4)), f64.copy(), s), ValueError, "writeable"
    yield "state type", lambda o, s: (f64.copy(), f64.copy(), {"s": np.zeros(4)}), TypeError, "OptimizerState"
    yield "state other rule", lambda o, s: (f64.copy(), f64.copy(), rn.Adam(lr=0.1).init(f64)), ValueError, \
        "another optimizer"
    yield "state other slots", lambda o, s: (f64.copy(), f64.copy(), rn.RMSProp(lr=0.1, centered=True).init(f64)), \
        ValueError, "another optimizer"
    yield "state shape", lambda o, s: (np.ones(5), np.ones(5), s), ValueError, "state.s must be an array of shape"
    yield "state dtype", lambda o, s: (np.ones(4, np.float32), np.ones(4, np.float32), s), ValueError, "dtype"


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", list(_bad_steps()), ids=[c[0] for c in _bad_steps()])
def test_bad_step_raises_and_touches_nothing(case):
    _, make, error, message = case
    opt = rn.RMSProp(lr=0.1, momentum=0.5)
    good_state = opt.init(np.ones(4))
    x, g, state = make(opt, good_state)
    before = [np.array(a, copy=True) for a in (x, g)]
    state_before = good_state.copy()
    with pytest.raises(error, match=message):
        opt.step(x, g, state)
    for a, b in zip((x, g), before):
        assert np.array_equal(np.asarray(a), b)
    for slot in good_state.slots:
        assert np.array_equal(getattr(good_state, slot), getattr(state_before, slot))
    assert good_state.t == 0


def test_state_aliasing_x_is_refused():
    opt = rn.RMSProp(lr=0.1)
    x = np.ones(4)
    state = opt.init(x)
    state.s = x
    with pytest.raises(ValueError, match="shares memory"):
        opt.step(x, np.ones(4), state)


def test_hyperparameters_may_change_between_steps():
    """A schedule swaps optimizers of the same layout; the state carries over."""
    x = np.ones(3)
    state = rn.RMSProp(lr=0.1).init(x)
    rn.RMSProp(lr=0.1).step(x, np.ones(3), state)
    rn.RMSProp(lr=0.05, gamma=0.5).step(x, np.ones(3), state)
    assert state.t == 2


def test_step_counts_and_debiases(dtype):
    opt = rn.Adam(lr=0.1)
    x = np.ones(2, dtype=dtype)
    state = opt.init(x)
    for _ in range(3):
        opt.step(x, np.ones(2, dtype=dtype), state)
    assert state.t == 3
    assert state.d1 == pytest.approx(1 - 0.9**3, rel=1e-6) and state.d2 == pytest.approx(1 - 0.999**3, rel=1e-5)
    assert np.dtype(type(state.d1)) == np.dtype(dtype)


def test_rules_without_bias_correction_leave_the_denominators_alone(dtype):
    """step and simulate agree: d1 and d2 stay at their initial 0 when the rule does not debias."""
    opt = rn.RMSProp(lr=0.1)
    x = np.ones(2, dtype=dtype)
    state = opt.init(x)
    opt.step(x, np.ones(2, dtype=dtype), state)
    traj = rn.simulate(opt, rn.quadratic_2d(), x0=(1.0, 1.0), steps=3, dtype=dtype)
    assert (state.t, state.d1, state.d2) == (1, 0, 0)
    assert (traj.state.t, traj.state.d1, traj.state.d2) == (3, 0, 0)


def test_step_entry_points_follow_the_argument_types():
    """The cached compiled entry points are keyed by what decides the argument types: a read-only
    gradient, another dtype, another option pattern of the same rule each get their own, and all
    agree with the reference."""
    from rmsnum.backends import reference

    for opt in (rn.RMSProp(lr=0.1), rn.RMSProp(lr=0.1, momentum=0.5, centered=True)):
        for dtype in (np.float32, np.float64):
            for writeable in (True, False):
                x, g = np.linspace(-1, 1, 7).astype(dtype), np.linspace(2, 3, 7).astype(dtype)
                g.flags.writeable = writeable
                xr = x.copy()
                state, ref_state = opt.init(x), opt.init(x)
                for _ in range(3):
                    opt.step(x, g, state)
                    reference.step(opt, xr, g, ref_state)
                np.testing.assert_allclose(x, xr, rtol=1e-5 if dtype == np.float32 else 1e-12)
