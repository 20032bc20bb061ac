"""simulate(): the chapter's numbers, the reference, divergence, noise and labels."""

import math

import numpy as np
import pytest

import rmsnum as rn
from conftest import OPTIMIZERS, RTOL

CHAPTER = dict(x0=(-5.0, -2.0), steps=20)


def test_chapter_2d_run_prints_the_published_line():
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), **CHAPTER)
    assert f"epoch 20, x1: {traj.x[-1, 0]:f}, x2: {traj.x[-1, 1]:f}" == "epoch 20, x1: -0.010599, x2: 0.000000"
    # d2l prints x1 = -0.01059867213411372 in float64; it computes (eta / den) * g where rmsnum
    # computes (lr * g) / den (Keras' and the book's from-scratch order): one rounding apart.
    assert traj.x[-1, 0] == pytest.approx(-0.01059867213411372, rel=1e-15)
    assert traj.x.shape == (21, 2) and traj.loss.shape == (21,)
    assert traj.diverged_at is None and traj.state.t == 20


def test_chapter_2d_run_float32():
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), **CHAPTER, dtype=np.float32)
    assert traj.x.dtype == np.float32 and traj.loss.dtype == np.float32
    assert traj.x[-1, 0] == pytest.approx(-0.01059867213411372, rel=1e-5)


def test_chapter_python_loop_is_reproduced():
    """The book's rmsprop_2d, looped in Python, against the compiled trajectory."""
    x1, x2, s1, s2 = -5.0, -2.0, 0.0, 0.0
    eta, gamma = 0.4, 0.9
    traj = rn.simulate(rn.RMSProp(lr=eta, gamma=gamma), rn.quadratic_2d(), x0=(x1, x2), steps=100)
    for t in range(1, 101):
        g1, g2, eps = 0.2 * x1, 4 * x2, 1e-6
        s1 = gamma * s1 + (1 - gamma) * g1**2
        s2 = gamma * s2 + (1 - gamma) * g2**2
        x1 -= eta / math.sqrt(s1 + eps) * g1
        x2 -= eta / math.sqrt(s2 + eps) * g2
        assert traj.x[t] == pytest.approx([x1, x2], rel=1e-12, abs=1e-12)
        assert traj.loss[t] == pytest.approx(0.1 * x1**2 + 2 * x2**2, rel=1e-12, abs=1e-24)


def test_long_run_ends_on_the_period_two_orbit():
    """lr * h > 2 sqrt(eps) for both curvatures: the iterates end on x_i = +-lr/2 (DESIGN.md)."""
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=20000)
    tail = traj.x[-100:]
    np.testing.assert_allclose(np.abs(tail), 0.2, rtol=1e-3)
    assert np.all(np.sign(tail[1:]) == -np.sign(tail[:-1]))


def test_simulate_matches_reference(optimizer, dtype):
    # a dense A and a diagonal one (the chapter's diagonal 2-D quadratic runs in most other tests); the
    # objectives of tests/test_schedule.py, whose kernels these are too
    for objective in (rn.rotated_quadratic_2d(), rn.Quadratic([1.0, 2.0, 3.0], [1.0, 0.0, -1.0])):
        x0 = np.linspace(-2, 3, objective.dim)
        traj = rn.simulate(optimizer, objective, x0, 50, dtype=dtype)
        ref = rn.simulate(optimizer, objective, x0, 50, dtype=dtype, backend="reference")
        rtol = RTOL[dtype]
        np.testing.assert_allclose(traj.x, ref.x, rtol=rtol * 10, atol=rtol * 10)
        np.testing.assert_allclose(traj.loss, ref.loss, rtol=rtol * 10, atol=rtol * 10)
        assert traj.diverged_at == ref.diverged_at


@pytest.mark.parametrize("name", ["rmsprop", "rmsprop-everything", "preset-keras", "adam", "momentum"])
def test_simulate_equals_a_loop_of_step_bit_for_bit(name, dtype):
    opt = OPTIMIZERS[name]
    obj = rn.Quadratic([0.5, 2.0, 7.0], [1.0, -1.0, 0.5])
    traj = rn.simulate(opt, obj, (1.0, 2.0, -3.0), 40, dtype=dtype)
    A, b = obj.A.astype(dtype), obj.b.astype(dtype)
    x = traj.x[0].copy()
    state = opt.init(x)
    for t in range(1, 41):
        opt.step(x, A * x - b, state)
        assert np.array_equal(x, traj.x[t])
    for slot in opt.slots:
        assert np.array_equal(getattr(state, slot), getattr(traj.state, slot))


def test_gamma_one_diverges_and_is_reported():
    """Exercise 1: with gamma = 1, s never leaves 0 and every step is lr/sqrt(eps) * g."""
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=1.0), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=200)
    assert traj.diverged and traj.diverged_at is not None and 0 < traj.diverged_at < 200
    assert np.all(traj.state.s == 0)
    assert traj.x[1, 0] == pytest.approx(-5.0 - 0.4 / math.sqrt(1e-6) * (0.2 * -5.0))
    k = traj.diverged_at
    assert not (np.all(np.isfinite(traj.x[k])) and np.isfinite(traj.loss[k]))
    assert np.all(np.isfinite(traj.x[:k])) and np.all(np.isfinite(traj.loss[:k]))
    assert np.all(np.isnan(traj.x[k + 1:])) and np.all(np.isnan(traj.loss[k + 1:]))
    assert traj.state.t == k
    ref = rn.simulate(rn.RMSProp(lr=0.4, gamma=1.0), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=200,
                      backend="reference")
    assert ref.diverged_at == k


def test_dense_quadratic_and_minimizer():
    obj = rn.Quadratic([[3.0, 1.0], [1.0, 2.0]], [1.0, 1.0])
    traj = rn.simulate(rn.RMSProp(lr=0.001, gamma=0.99), obj, (0.0, 0.0), 5000)
    np.testing.assert_allclose(traj.x[-1], obj.minimizer, atol=1e-2)
    assert traj.loss[-1] == pytest.approx(obj.f_star, abs=1e-4)
    assert traj.gap[-1] >= -1e-12


def test_noise_is_seeded_and_reproducible():
    obj = rn.quadratic_2d(noise=0.5)
    opt = rn.RMSProp(lr=0.05)
    a = rn.simulate(opt, obj, (1.0, 1.0), 100, seed=3)
    b = rn.simulate(opt, obj, (1.0, 1.0), 100, seed=3)
    c = rn.simulate(opt, obj, (1.0, 1.0), 100, seed=4)
    assert np.array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    ref = rn.simulate(opt, obj, (1.0, 1.0), 100, seed=3, backend="reference")
    np.testing.assert_allclose(a.x, ref.x, rtol=1e-11, atol=1e-11)
    clean = rn.simulate(opt, rn.quadratic_2d(), (1.0, 1.0), 100, seed=3)
    assert not np.array_equal(a.x, clean.x)


def test_trajectory_is_labelled():
    traj = rn.simulate(rn.RMSProp.torch(lr=0.01), rn.quadratic_2d(), (1.0, 1.0), 3, seed=1, dtype=np.float32)
    assert traj.provenance["backend"] == "cpu" and traj.provenance["dtype"] == "float32"
    assert traj.provenance["seed"] == 1 and traj.provenance["rmsnum"] == rn.__version__
    assert traj.optimizer.preset == "torch" and traj.steps == 3


def test_zero_steps():
    traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 0)
    assert traj.x.shape == (1, 2) and traj.loss[0] == pytest.approx(2.1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(x0=(1.0, math.nan)), ValueError, "x0 must be finite"),
    (dict(x0=(1.0, math.inf)), ValueError, "x0 must be finite"),
    (dict(x0=(1.0, 2.0, 3.0)), ValueError, r"x0 must have shape \(2,\)"),
    (dict(x0="ab"), TypeError, "x0"),
    (dict(x0=(1e300, 0.0), dtype=np.float32), ValueError, "overflows float32"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=2.5), TypeError, "steps"),
    (dict(steps=2**70), ValueError, r"steps must be at most \d+ here, got 1180591620717411303424"),
    (dict(steps=2**62), ValueError, r"steps must be at most"),  # an int64, but (steps + 1) x 2 float64 is too big
    (dict(opt=rn.RMSProp(lr=1e-50), dtype=np.float32), ValueError, "lr=1e-50 rounds to 0 in float32"),
    (dict(opt=rn.RMSProp.keras(epsilon=1e-50), dtype=np.float32), ValueError, "epsilon=1e-50 rounds to 0"),
    (dict(schedule={"lr": [0.1, 0.1, 1e-50, 0.1, 0.1]}, dtype=np.float32), ValueError,
     r"schedule\['lr'\] at step 2: lr=1e-50 rounds to 0 in float32"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(backend="gpu"), ValueError, "backend"),
    (dict(opt="rmsprop"), TypeError, "opt"),
    (dict(objective=lambda x: x), TypeError, "objective"),
])
def test_bad_simulate_arguments(kwargs, error, message):
    args = dict(opt=rn.RMSProp(lr=0.1), objective=rn.quadratic_2d(), x0=(1.0, 1.0), steps=5)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        rn.simulate(args.pop("opt"), args.pop("objective"), args.pop("x0"), args.pop("steps"), **args)


def test_a_quadratic_name_must_be_a_str():
    with pytest.raises(TypeError, match="name must be a str or None, got 123 of type int"):
        rn.Quadratic([1.0, 2.0], name=123)
    assert rn.Quadratic([1.0, 2.0], name="bowl").name == "bowl"


# --------------------------------------------------------------------------- record=


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_record_keeps_the_rows_of_an_every_step_run(backend):
    opt, obj = rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d()
    full = rn.simulate(opt, obj, **CHAPTER, backend=backend)
    assert full.record == 1 and np.array_equal(full.loss_steps, np.arange(21))
    assert np.array_equal(full.final_x, full.x[-1]) and full.final_loss == full.loss[-1]
    for record, steps in (("final", None), ("loss", np.arange(21)), (3, np.arange(0, 21, 3)), (20, [0, 20]),
                          (50, [0])):
        traj = rn.simulate(opt, obj, **CHAPTER, backend=backend, record=record)
        assert np.array_equal(traj.final_x, full.final_x) and traj.final_loss == full.final_loss
        assert traj.state.t == 20 and np.array_equal(traj.state.s, full.state.s) and traj.steps == 20
        if steps is None:
            assert traj.x is None and traj.loss is None and traj.loss_steps is None
            continue
        assert np.array_equal(traj.loss_steps, steps) and np.array_equal(traj.loss, full.loss[steps])
        if record == "loss":
            assert traj.x is None
        else:
            assert np.array_equal(traj.x, full.x[steps])


def test_record_of_a_diverging_run():
    opt = rn.RMSProp(lr=0.4, gamma=1.0)
    full = rn.simulate(opt, rn.quadratic_2d(), x0=(-5.0, -2.0), steps=200)
    k = full.diverged_at
    assert np.array_equal(full.final_x, full.x[k], equal_nan=True) and np.isnan(full.final_loss) or \
        not np.isfinite(full.final_loss)
    for record in ("final", "loss", 7):
        traj = rn.simulate(opt, rn.quadratic_2d(), x0=(-5.0, -2.0), steps=200, record=record)
        assert traj.diverged_at == k
        assert np.array_equal(traj.final_x, full.final_x, equal_nan=True)
        if traj.loss is not None:
            np.testing.assert_array_equal(traj.loss, full.loss[traj.loss_steps])


def test_record_final_allocates_no_trajectory():
    import tracemalloc

    opt, obj = rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d()
    rn.simulate(opt, obj, **CHAPTER, record="final")  # compiled before measuring
    tracemalloc.start()
    try:
        traj = rn.simulate(opt, obj, x0=(-5.0, -2.0), steps=200_000, record="final")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert traj.x is None and traj.state.t == 200_000
    assert peak < 200_000 * 2 * 8 / 4  # an every-step trajectory would need 3.2 MB
    # and a length whose trajectory would never fit is accepted
    with pytest.raises(ValueError, match="steps must be at most"):
        rn.simulate(opt, obj, (1.0, 1.0), 2**62)
    with pytest.raises(ValueError, match=r"steps must be at most 4611686018427387904 \(the kernels count"):
        rn.simulate(opt, obj, (1.0, 1.0), 2**62 + 1, record="final")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(record="every"), TypeError, r"record must be 'final', 'loss' or a positive int k \(every k-th step\), "
                                      "got 'every'"),
    (dict(record=0), ValueError, r"record must be a positive int k \(every k-th step\), 'final' or 'loss', got 0"),
    (dict(record=True), TypeError, "record must be 'final', 'loss'"),
    (dict(record=2.0), TypeError, "record must be 'final', 'loss'"),
    (dict(backend="dask"), ValueError, r"backend must be one of \('cpu', 'cuda', 'reference'\) for one run, got "
                                       "'dask' \\(Dask runs sweeps"),
])
def test_bad_record_and_backend(kwargs, error, message):
    with pytest.raises(error, match=message):
        rn.simulate(rn.RMSProp(lr=0.1), rn.quadratic_2d(), (1.0, 1.0), 5, **kwargs)
