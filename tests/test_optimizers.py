"""Construction, validation, presets and the guarded in-place step."""

import math
from fractions import Fraction

import numpy as np
import pytest

import rmsnum as rn
from rmsnum._neutral import HIGHEST
from oracle import reference_step  # noqa: E402 (tests/ is on sys.path)

BAD_HYPERPARAMETERS = [
    (rn.RMSProp.tf_keras2, dict(momentum=1.5), ValueError, "momentum"),
    (rn.RMSProp.tf_keras2, dict(momentum="0.9"), TypeError, "momentum"),
    (rn.RMSProp.tf_keras2, dict(learning_rate=0.0), ValueError, "learning_rate"),
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
    # the framework options of issue 19
    (rn.RMSProp, dict(lr=0.1, maximize=1), TypeError, "maximize"),
    (rn.RMSProp, dict(lr=0.1, rescale_grad=0.0), ValueError, "rescale_grad"),
    (rn.RMSProp, dict(lr=0.1, rescale_grad="2"), TypeError, "rescale_grad"),
    (rn.RMSProp, dict(lr=0.1, clip_gradient=-1.0), ValueError, "clip_gradient"),
    (rn.RMSProp, dict(lr=0.1, clip_weights=math.inf), ValueError, "clip_weights"),
    (rn.RMSProp, dict(lr=0.1, eps=0.0, initial_s=1.0, gamma=0.0), ValueError, "eps must be > 0 here"),
    (rn.RMSProp.tf1, dict(learning_rate=0.1, epsilon=0.0, decay=0.0), ValueError, "epsilon must be > 0 here.*decay"),
    (rn.SGD, dict(lr=0.1, weight_decay=-1.0), ValueError, "weight_decay"),
    (rn.SGD.torch, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"and dampening=0"),
    (rn.SGD.torch, dict(lr=0.1, dampening=1.5), ValueError, r"dampening must be in \[0, 1\]"),
    (rn.SGD.torch, dict(lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum"),
    (rn.Momentum, dict(lr=0.1, dampening=-0.5), ValueError, r"dampening must be in \[0, 1\]"),
    (rn.RMSProp, dict(lr=0.1, clip_norm=-1.0), ValueError, "clip_norm"),
    (rn.Adam, dict(lr=0.1, clip_norm="1"), TypeError, "clip_norm"),
    (rn.RMSProp.keras, dict(clipnorm="1"), TypeError, "clipnorm"),
    (rn.Adam.keras, dict(global_clipnorm=float("inf")), ValueError, "global_clipnorm"),
    (rn.Adagrad.keras, dict(clipvalue=0.5, clipnorm=1.0), ValueError, "only one of clipnorm, clipvalue and global"),
    (rn.AdamW.keras, dict(clipnorm=1.0, global_clipnorm=1.0), ValueError, "only one of clipnorm"),
    (rn.Momentum, dict(lr=0.1, dampening="0"), TypeError, "dampening"),
    (rn.Momentum, dict(lr=0.1, dampening=0.5, nesterov=True), ValueError, r"nesterov=True needs dampening=0"),
    (rn.SGD.torch, dict(lr=0.1, momentum=1.0), ValueError, "momentum"),
    (rn.SGD.mxnet, dict(clip_gradient="1"), TypeError, "clip_gradient"),
    (rn.SGD.mxnet, dict(rescale_grad=-1.0), ValueError, "rescale_grad"),
    (rn.Momentum, dict(lr=0.1, nesterov="yes"), TypeError, "nesterov"),
    (rn.Adagrad, dict(lr=0.1, lr_decay=-0.1), ValueError, "lr_decay"),
    (rn.Adagrad.torch, dict(lr_decay=math.nan), ValueError, "lr_decay"),
    (rn.Adagrad.torch, dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    (rn.Adagrad.keras, dict(clipvalue=math.inf), ValueError, "clipvalue"),
    (rn.Adam.keras, dict(clipvalue="0.5"), TypeError, "clipvalue"),
    (rn.Adam.mxnet, dict(wd=-0.1), ValueError, "wd"),
    (rn.Adam.optax, dict(learning_rate=0.1, b1=1.0), ValueError, "b1"),
]


def test_framework_clip_arguments_off_as_the_frameworks_mean_it():
    """None, 0 and MXNet's -1 switch a clip off; a positive number clips (Keras' clipvalue, MXNet's clip_gradient)."""
    for off in (None, 0.0, -1.0):
        assert rn.RMSProp.mxnet(clip_gradient=off, clip_weights=off) == rn.RMSProp.mxnet()
        assert rn.Adam.keras(clipvalue=off).clip_gradient == 0.0
    assert rn.Adam.keras(clipvalue=0.5).clip_gradient == 0.5
    for off in (None, 0.0, -1.0):
        assert rn.RMSProp.keras(clipnorm=off) == rn.RMSProp.keras(global_clipnorm=off) == rn.RMSProp.keras()
    assert rn.RMSProp.keras(global_clipnorm=2.0) == rn.RMSProp.keras(clipnorm=2.0)  # for one array
    assert rn.RMSProp(lr=0.1).coefficients()[-1] is HIGHEST


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_norm_scales_the_gradient_to_the_norm_and_steps_arrays_by_their_global_norm(dtype):
    """Keras' clipnorm: g * c / max(|g|, c); global_clipnorm over several arrays: their joint norm,
    so that two arrays stepped with it equal one array holding both."""
    opt = rn.Adam.keras(learning_rate=0.1, global_clipnorm=1.0)
    plain = rn.Adam.keras(learning_rate=0.1)
    g = np.array([3.0, -4.0, 12.0], dtype)  # norm 13: clipped to 1
    x, y = np.ones(3, dtype), np.ones(3, dtype)
    opt.step(x, g, opt.init(x))
    plain.step(y, g / dtype(13.0), plain.init(y))
    np.testing.assert_allclose(x, y, rtol=1e-12 if dtype == np.float64 else 1e-6)
    small = np.array([0.3, -0.4, 0.0], dtype)  # norm 0.5: left as it is
    x, y = np.ones(3, dtype), np.ones(3, dtype)
    opt.step(x, small, opt.init(x))
    plain.step(y, small, plain.init(y))
    np.testing.assert_array_equal(x, y)
    whole, parts = np.linspace(-2.0, 3.0, 7).astype(dtype), np.linspace(-2.0, 3.0, 7).astype(dtype)
    state = opt.init(whole)
    a, b = parts[:3].copy(), parts[3:].copy()
    sa, sb = opt.init(a), opt.init(b)
    for _ in range(5):
        opt.step(whole, 2 * whole, state)
        ga, gb = 2 * a, 2 * b
        norm = math.sqrt(float(np.vdot(ga, ga)) + float(np.vdot(gb, gb)))
        opt.step(a, ga, sa, norm=norm)
        opt.step(b, gb, sb, norm=norm)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_step_norm_must_be_a_finite_non_negative_number():
    opt = rn.RMSProp.keras(learning_rate=0.1, clipnorm=1.0)
    x = np.ones(2)
    state = opt.init(x)
    for bad, error in ((-1.0, ValueError), (math.inf, ValueError), ("1", TypeError)):
        with pytest.raises(error, match="norm"):
            opt.step(x, x.copy(), state, norm=bad)
    np.testing.assert_array_equal(x, 1.0)
    assert state.t == 0
    assert rn.RMSProp.mxnet().coefficients()[2:4] == rn.RMSProp(lr=0.1).coefficients()[2:4]  # LOWEST, HIGHEST


def test_predicted_stable_refuses_the_options_it_does_not_cover():
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 5, {"lr": [0.1, 0.2]}, fixed={"maximize": True},
                   progress=False)
    with pytest.raises(ValueError, match="without Nesterov momentum, weight decay, maximize, rescaling or clipping"):
        rn.analysis.predicted_stable(res)


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


# Every renamed argument of every preset, out of range: (preset, kwargs, error, the name the user wrote,
# the internal field that the message must not name).
BAD_PRESET_ARGUMENTS = [
    (rn.RMSProp.d2l, dict(gamma=1.5), ValueError, "gamma", None),
    (rn.RMSProp.torch, dict(alpha=1.5), ValueError, "alpha", "gamma"),
    (rn.RMSProp.torch, dict(alpha="0.9"), TypeError, "alpha", "gamma"),
    (rn.RMSProp.keras, dict(learning_rate=0), ValueError, "learning_rate", "lr"),
    (rn.RMSProp.keras, dict(rho=-0.1), ValueError, "rho", "gamma"),
    (rn.RMSProp.keras, dict(epsilon=0), ValueError, "epsilon", "eps"),
    (rn.RMSProp.tf1, dict(learning_rate=-1.0), ValueError, "learning_rate", "lr"),
    (rn.RMSProp.tf1, dict(learning_rate=0.1, decay=2.0), ValueError, "decay", "gamma"),
    (rn.RMSProp.tf1, dict(learning_rate=0.1, epsilon=math.nan), ValueError, "epsilon", "eps"),
    (rn.RMSProp.optax, dict(learning_rate=math.inf), ValueError, "learning_rate", "lr"),
    (rn.RMSProp.optax, dict(learning_rate=0.1, decay=1.5), ValueError, "decay", "gamma"),
    (rn.RMSProp.optax, dict(learning_rate=0.1, initial_scale=-1.0), ValueError, "initial_scale", "initial_s"),
    (rn.RMSProp.mxnet, dict(learning_rate=0), ValueError, "learning_rate", "lr"),
    (rn.RMSProp.mxnet, dict(gamma1=1.5), ValueError, "gamma1", "gamma"),
    (rn.RMSProp.mxnet, dict(epsilon=-1e-8), ValueError, "epsilon", "eps"),
    (rn.RMSProp.mxnet, dict(wd=math.inf), ValueError, "wd", "weight_decay"),
    (rn.RMSProp.mxnet, dict(gamma2=5.0), ValueError, "gamma2", "momentum"),  # unused when not centered
    (rn.RMSProp.mxnet, dict(gamma2=5.0, centered=True), ValueError, "gamma2", "momentum"),
    (rn.RMSProp.mxnet, dict(gamma2="0.9"), TypeError, "gamma2", "momentum"),
]


@pytest.mark.parametrize("preset, kwargs, error, name, field", BAD_PRESET_ARGUMENTS)
def test_preset_errors_name_the_users_argument(preset, kwargs, error, name, field):
    with pytest.raises(error, match=rf"^{name} must be ") as info:
        preset(**kwargs)
    assert field is None or field not in str(info.value).replace(name, "")


@pytest.mark.parametrize("preset, error, message", [
    (123, TypeError, r"preset must be None or a str, got 123 of type int"),
    ("pytorch", ValueError, r"preset must be None or one of 'd2l', 'torch', .*, got 'pytorch'"),
])
def test_bad_preset_label(preset, error, message):
    with pytest.raises(error, match=message):
        rn.RMSProp(lr=0.1, preset=preset)


def test_a_sweep_grid_of_the_unused_gamma2_is_refused():
    """The sweep builds each configuration through the preset, so an invalid gamma2 fails there too."""
    with pytest.raises(ValueError, match=r"grid\['gamma2'\]\[1\].*gamma2 must be in \[0, 1\), got 7.0"):
        rn.sweep(rn.RMSProp.mxnet, rn.quadratic_2d(), (1.0, 1.0), 5, grid={"gamma2": [0.5, 7.0]}, progress=False)


@pytest.mark.parametrize("value, message", [
    (math.inf, r"^lr must be a finite number in \(0, inf\), got inf$"),
    (-math.inf, r"^lr must be a finite number in \(0, inf\), got -inf$"),
    (10**400, r"^lr must be a finite number in \(0, inf\)"),  # beyond float: not an OverflowError
    (Fraction(10**400), r"^lr must be a finite number in \(0, inf\)"),
], ids=["inf", "-inf", "int 10**400", "Fraction 10**400"])
def test_non_finite_values_get_a_consistent_message(value, message):
    with pytest.raises(ValueError, match=message):
        rn.RMSProp(lr=value)
    with pytest.raises(ValueError, match=r"^weight_decay must be in \[0, inf\), got -1"):
        rn.RMSProp(lr=0.1, weight_decay=-1)


@pytest.mark.parametrize("make", [
    lambda f: rn.RMSProp(lr=f, gamma=f, eps=f, initial_s=f, momentum=f, weight_decay=f),
    lambda f: rn.RMSProp.torch(lr=f, alpha=f, eps=f, weight_decay=f, momentum=f),
    lambda f: rn.RMSProp.keras(learning_rate=f, rho=f, momentum=f, epsilon=f, weight_decay=f),
    lambda f: rn.RMSProp.tf1(f, decay=f, momentum=f, epsilon=f),
    lambda f: rn.RMSProp.optax(f, decay=f, eps=f, initial_scale=f, momentum=f),
    lambda f: rn.RMSProp.mxnet(learning_rate=f, gamma1=f, gamma2=f, epsilon=f, wd=f, centered=True),
    lambda f: rn.RMSProp.d2l(lr=f, gamma=f, eps=f),
    lambda f: rn.RMSProp.tf_keras2(learning_rate=f, rho=f, momentum=f, epsilon=f),
    lambda f: rn.SGD(lr=f),
    lambda f: rn.Momentum(lr=f, beta=f),
    lambda f: rn.Adagrad(lr=f, eps=f),
    lambda f: rn.Adam(lr=f, beta1=f, beta2=f, eps=f),
], ids=["RMSProp", "torch", "keras", "tf1", "optax", "mxnet", "d2l", "tf_keras2", "SGD", "Momentum", "Adagrad",
        "Adam"])
def test_fractions_are_accepted_everywhere_as_floats(make):
    opt = make(Fraction(1, 4))
    numbers = [value for value in opt.hyperparameters().values() if not isinstance(value, (bool, str, type(None)))]
    assert numbers and all(type(value) is float for value in numbers)
    assert opt == make(0.25)


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


ALIASING_OPTIMIZER = rn.RMSProp(lr=0.1, momentum=0.5, centered=True)  # all three state slots


def _overlapping_calls():
    """Calls of step whose arrays overlap in memory other than as ``g is x``:
    (name, make(n) -> (x, g, state), message)."""
    def fresh(n):
        x = np.linspace(1, 2, n)
        return x, np.linspace(-1, 1, n), ALIASING_OPTIMIZER.init(x)

    def shifted(n):
        """Two overlapping views of one buffer: [1:] and [:-1]."""
        buf = np.linspace(1, 2, n + 1)
        return buf[1:], buf[:-1]

    def g_after_x(n):
        x, g = shifted(n)
        return x, g, ALIASING_OPTIMIZER.init(x)

    def x_after_g(n):
        g, x = shifted(n)
        return x, g, ALIASING_OPTIMIZER.init(x)

    def slot(name, value):
        def make(n):
            x, g, state = fresh(n)
            setattr(state, name, value(x, g, state))
            return x, g, state
        return make

    def slots_shifted(n):
        x, g, state = fresh(n)
        state.m, state.g_avg = shifted(n)
        return x, g, state

    def slot_shifted_from_g(n):
        x, _, state = fresh(n)
        g, state.s = shifted(n)
        return x, g, state

    g_message = "g shares memory with x without being x itself"
    yield "g one element behind x", g_after_x, g_message
    yield "g one element ahead of x", x_after_g, g_message
    yield "state.m is state.s", slot("m", lambda x, g, state: state.s), "state.m shares memory with state.s"
    yield "state.g_avg overlaps state.m", slots_shifted, "state.g_avg shares memory with state.m"
    yield "state.s is g", slot("s", lambda x, g, state: g), "state.s shares memory with g"
    yield "state.s overlaps g", slot_shifted_from_g, "state.s shares memory with g"
    yield "state.m is a view of x", slot("m", lambda x, g, state: x.view()), "state.m shares memory with x"


@pytest.mark.parametrize("n", [4, 1 << 17], ids=["serial", "parallel"])
@pytest.mark.parametrize("case", list(_overlapping_calls()), ids=[c[0] for c in _overlapping_calls()])
def test_overlapping_arrays_are_refused_before_anything_is_touched(case, n):
    _, make, message = case
    x, g, state = make(n)
    before = [a.copy() for a in (x, g, *(getattr(state, slot) for slot in state.slots))]
    with pytest.raises(ValueError, match=message):
        ALIASING_OPTIMIZER.step(x, g, state)
    for a, b in zip((x, g, *(getattr(state, slot) for slot in state.slots)), before):
        assert np.array_equal(a, b)
    assert state.t == 0


@pytest.mark.parametrize("n", [7, 1 << 17], ids=["serial", "parallel"])
@pytest.mark.parametrize("as_gradient", [lambda x: x, lambda x: x.view(), lambda x: x.reshape(x.shape)],
                         ids=["x", "a view", "a reshape"])
def test_g_may_be_x_itself(as_gradient, n):
    """The same memory as x (same start, shape and strides) is allowed, and equals a step on a copy."""
    data = np.linspace(-1, 2, n)
    x, copy = data.copy(), data.copy()
    state, copy_state = ALIASING_OPTIMIZER.init(x), ALIASING_OPTIMIZER.init(x)
    for _ in range(3):
        ALIASING_OPTIMIZER.step(x, as_gradient(x), state)
        ALIASING_OPTIMIZER.step(copy, copy.copy(), copy_state)
    assert np.array_equal(x, copy)
    for slot in state.slots:
        assert np.array_equal(getattr(state, slot), getattr(copy_state, slot))


# Hyperparameters that do not survive rounding to float32: (optimizer, the name in the message).
VANISHING = [
    (lambda: rn.RMSProp(lr=1e-50), "lr=1e-50 rounds to 0 in float32"),
    (lambda: rn.RMSProp(lr=0.1, eps=1e-50), "eps=1e-50 rounds to 0 in float32"),
    (lambda: rn.RMSProp(lr=0.1, weight_decay=1e39), "weight_decay=1e[+]39 overflows float32"),
    (lambda: rn.RMSProp(lr=0.1, initial_s=1e39), "initial_s=1e[+]39 overflows float32"),
    (lambda: rn.RMSProp.keras(learning_rate=1e-50), "learning_rate=1e-50 rounds to 0"),
    (lambda: rn.RMSProp.torch(eps=1e-46), "eps=1e-46 rounds to 0"),
    (lambda: rn.RMSProp.mxnet(epsilon=1e-50, wd=1e-50), "epsilon=1e-50 rounds to 0"),
    (lambda: rn.RMSProp.optax(1e-3, initial_scale=1e40), "initial_scale=1e[+]40 overflows"),
    (lambda: rn.SGD(lr=1e-50), "lr=1e-50 rounds to 0"),
    (lambda: rn.Momentum(lr=1e39), "lr=1e[+]39 overflows"),
    (lambda: rn.Adagrad(lr=0.1, eps=1e-50), "eps=1e-50 rounds to 0"),
    (lambda: rn.Adam(lr=0.1, eps=1e-50), "eps=1e-50 rounds to 0"),
]


@pytest.mark.parametrize("make, message", VANISHING)
def test_hyperparameters_that_do_not_survive_the_dtype_are_refused(make, message):
    """step (and the reference's step) in x's dtype, simulate and train in their working dtype."""
    opt = make()
    x, g = np.ones(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=message):
        opt.init(x)
    state = opt.init(np.ones(3))  # a float32 state, bypassing init
    for slot in state.slots:
        setattr(state, slot, np.zeros(3, np.float32))
    state.d1 = state.d2 = np.float32(0)
    for step in (opt.step, lambda x, g, state: reference_step(opt, x, g, state)):
        with pytest.raises(ValueError, match=message):
            step(x, g, state)
        assert np.array_equal(x, np.ones(3)) and state.t == 0
    with pytest.raises(ValueError, match=message):
        rn.simulate(opt, rn.quadratic_2d(), (1.0, 1.0), 3, dtype=np.float32)
    data = rn.data.synthetic_regression(n=20, d=2, noise=0.1, seed=0)
    with pytest.raises(ValueError, match=message):
        rn.train(opt, rn.LinearRegression(data.X.astype(np.float32), data.y.astype(np.float32)), batch_size=10,
                 epochs=1)
    x64 = np.ones(3)
    opt.step(x64, np.ones(3), opt.init(x64))  # float64 holds them


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
    for opt in (rn.RMSProp(lr=0.1), rn.RMSProp(lr=0.1, momentum=0.5, centered=True)):
        for dtype in (np.float32, np.float64):
            for writeable in (True, False):
                x, g = np.linspace(-1, 1, 7).astype(dtype), np.linspace(2, 3, 7).astype(dtype)
                g.flags.writeable = writeable
                xr = x.copy()
                state, ref_state = opt.init(x), opt.init(x)
                for _ in range(3):
                    opt.step(x, g, state)
                    reference_step(opt, xr, g, ref_state)
                np.testing.assert_allclose(x, xr, rtol=1e-5 if dtype == np.float32 else 1e-12)


# --------------------------------------------------------------------------- Adam: AMSGrad, weight decay, AdamW

ADAM_GRID = {"lr": [0.02, 0.2], "amsgrad": [False, True], "weight_decay": [0.0, 0.1],
             "decoupled_weight_decay": [False, True]}


def test_adam_options_in_a_sweep_equal_simulate():
    """AMSGrad (a fourth slot's worth of state: s, m, v_max) and both weight decays as grid axes: every
    configuration of the sweep equals simulate of that optimizer bit for bit."""
    objective = rn.Quadratic([0.5, 2.0, 8.0], [1.0, -1.0, 0.5])
    x0 = (1.0, 2.0, -1.0)
    # beta2 0.9: s follows the shrinking gradients near the optimum, so its running maximum differs
    res = rn.sweep(rn.Adam, objective, x0, 40, ADAM_GRID, {"beta2": 0.9}, record=8, progress=False)
    assert res.shape == (2, 2, 2, 2)
    for index in np.ndindex(res.shape):
        traj = rn.simulate(rn.Adam(**res.config(index), beta2=0.9), objective, x0, 40)
        np.testing.assert_array_equal(res.final_x[index], traj.x[-1], err_msg=str(res.config(index)))
        np.testing.assert_array_equal(res.loss[index], traj.loss[res.loss_steps])
    plain, amsgrad = res.final_x[1, 0, 0, 0], res.final_x[1, 1, 0, 0]
    assert not np.array_equal(plain, amsgrad)  # the running maximum changes the run


def test_adam_options_in_train_and_train_sweep_equal_the_reference():
    from test_training import small_problem

    problem = small_problem()
    kwargs = dict(batch_size=8, epochs=2, seed=5, record_every=16)
    res = rn.train_sweep(rn.Adam, problem, grid=ADAM_GRID, progress=False, **kwargs)
    for index in [(0, 0, 0, 0), (1, 1, 1, 0), (1, 1, 1, 1), (0, 1, 0, 1)]:
        opt = rn.Adam(**res.config(index))
        run = rn.train(opt, problem, **kwargs)
        ref = rn.train(opt, problem, backend="reference", **kwargs)
        np.testing.assert_array_equal(res.final_x[index], np.append(run.w, run.b))
        np.testing.assert_allclose(np.append(run.w, run.b), np.append(ref.w, ref.b), rtol=1e-10, atol=1e-12)
        assert run.state.slots == (("s", "m", "v_max") if opt.amsgrad else ("s", "m"))
        for slot in run.state.slots:
            np.testing.assert_allclose(getattr(run.state, slot), getattr(ref.state, slot), rtol=1e-10, atol=1e-14)


def test_adamw_is_adam_with_decoupled_decay(dtype):
    x = np.linspace(-1, 2, 5).astype(dtype)
    a, b = x.copy(), x.copy()
    A, B = rn.AdamW(lr=0.1, weight_decay=0.2), rn.Adam(lr=0.1, weight_decay=0.2, decoupled_weight_decay=True)
    assert A == B and A.slots == B.slots == ("s", "m")
    sa, sb = A.init(a), B.init(b)
    for _ in range(5):
        A.step(a, a * 3, sa)
        B.step(b, b * 3, sb)
    np.testing.assert_array_equal(a, b)
    assert rn.AdamW.torch().weight_decay == 0.01 and rn.AdamW.keras().weight_decay == 0.004


def test_adam_states_of_other_options_are_refused():
    x = np.zeros(3)
    with pytest.raises(ValueError, match=r"slots \('s', 'm'\).*slots \('s', 'm', 'v_max'\)"):
        rn.Adam(lr=0.1, amsgrad=True).step(x, x.copy(), rn.Adam(lr=0.1).init(x))
    state = rn.Adam(lr=0.1, amsgrad=True).init(x)
    assert state.v_max is not None and rn.Adam(lr=0.1).init(x).v_max is None
    with pytest.raises(AttributeError, match="no slot or attribute 'g_avg'"):
        state.g_avg


@pytest.mark.parametrize("make, message", [
    (lambda: rn.Adam(lr=0.1, amsgrad=1), "amsgrad must be"),
    (lambda: rn.Adam(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: rn.Adam(lr=0.1, decoupled_weight_decay="yes"), "decoupled_weight_decay must be"),
    (lambda: rn.Adam.torch(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: rn.Adam.torch(betas=0.9), "betas must be a pair"),
    (lambda: rn.Adam.keras(beta_1=1.5), "beta_1"),
    (lambda: rn.Adam.keras(epsilon=0.0), "epsilon"),
    (lambda: rn.AdamW.torch(weight_decay=-0.1), "weight_decay"),
    (lambda: rn.AdamW.keras(learning_rate=0.0), "learning_rate"),
    (lambda: rn.Adam(lr=0.1, preset="numpy"), "preset must be"),
    (lambda: rn.AdamW(lr=0.1, decoupled_weight_decay=False), "decoupled_weight_decay"),
])
def test_adam_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()
