"""The classic objectives against SciPy and their closed forms."""

import numba
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import rmsnum as rn
from rmsnum import classics


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_rosenbrock_is_scipys_rosen(dim):
    f = classics.rosenbrock(dim)
    points = np.random.default_rng(dim).normal(size=(20, dim))
    np.testing.assert_allclose(f.value(points), [scipy.optimize.rosen(p) for p in points], rtol=1e-13)
    np.testing.assert_allclose(f.grad(points), [scipy.optimize.rosen_der(p) for p in points], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(f.minimum, np.ones(dim))
    assert f.f_star == 0.0 and float(f.value(f.minimum)) == 0.0


def test_rosenbrock_parameters():
    f = classics.rosenbrock(a=2.0, b=10.0)
    np.testing.assert_array_equal(f.minimum, [2.0, 4.0])
    np.testing.assert_array_equal(f.grad(f.minimum), [0.0, 0.0])
    assert classics.rosenbrock(3, a=2.0).minimum is None
    with pytest.raises(ValueError, match="dim must be an integer >= 2"):
        classics.rosenbrock(1)
    with pytest.raises(ValueError, match="b must be"):
        classics.rosenbrock(b=-1.0)


@pytest.mark.parametrize("make, minimum", [(classics.beale, (3.0, 0.5)), (classics.booth, (1.0, 3.0))])
def test_beale_and_booth_gradients_and_minima(make, minimum):
    f = make()
    for p in np.random.default_rng(0).uniform(-2, 2, size=(10, 2)):
        numeric = scipy.optimize.approx_fprime(p, lambda z: float(f.value(z)), 1e-7)
        np.testing.assert_allclose(f.grad(p), numeric, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(f.minimum, minimum)
    assert float(f.value(minimum)) == 0.0 and f.f_star == 0.0
    np.testing.assert_array_equal(f.grad(minimum), [0.0, 0.0])


def test_beale_and_booth_formulas():
    x, y = 0.7, -1.3
    beale = (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2
    assert float(classics.beale().value([x, y])) == pytest.approx(beale, rel=1e-15)
    assert float(classics.booth().value([x, y])) == pytest.approx((x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2, rel=1e-15)


@pytest.mark.parametrize("value", [classics.rosenbrock_value, classics.beale_value, classics.booth_value,
                                   classics.logistic_value])
def test_float32_points_are_computed_in_float32(value):
    f32 = numba.types.float32
    point = numba.types.Array(f32, 1, "A")
    extra = {classics.rosenbrock_value: (f32, f32),
             classics.logistic_value: (numba.types.Array(f32, 2, "C"), numba.types.Array(f32, 1, "C"), f32)}
    signature = (point, *extra.get(value, ()))
    value.compile(signature)
    assert value.overloads[signature].signature.return_type == f32


def _data(separable=False, n=120, dtype=np.float64):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 3))
    score = X @ [1.0, -2.0, 0.5] + (0 if separable else rng.normal(size=n))
    return X.astype(dtype), (score > 0).astype(dtype)


def test_logistic_loss_and_gradient_match_the_formula():
    X, y = _data()
    f = classics.logistic_regression(X, y, l2=0.1)
    p = np.array([0.3, -0.2, 0.1, 0.05])
    z = X @ p[:3] + p[3]
    loss = np.mean(np.logaddexp(0, z) - y * z) + 0.05 * p[:3] @ p[:3]
    r = scipy.special.expit(z) - y
    grad = np.append(X.T @ r / len(y) + 0.1 * p[:3], r.mean())
    assert float(f.value(p)) == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(f.grad(p), grad, rtol=1e-12, atol=1e-15)


def test_logistic_minimum_is_scipys():
    X, y = _data()
    f = classics.logistic_regression(X, y)

    def loss(p):
        z = X @ p[:3] + p[3]
        return np.mean(np.logaddexp(0, z) - y * z)

    found = scipy.optimize.minimize(loss, np.zeros(4), method="Nelder-Mead",
                                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    np.testing.assert_allclose(f.minimum, found.x, atol=1e-6)
    assert f.f_star == pytest.approx(found.fun, abs=1e-12)
    assert np.abs(f.grad(f.minimum)).max() < 1e-8


def test_logistic_on_separable_data_has_no_minimum_unless_penalised():
    X, y = _data(separable=True)
    f = classics.logistic_regression(X, y)
    assert f.minimum is None and f.f_star is None
    assert classics.logistic_regression(X, y, l2=0.01).f_star > 0


def test_logistic_keeps_the_data_dtype_and_does_not_copy():
    X, y = _data(dtype=np.float32)
    f = classics.logistic_regression(X, y)
    assert np.shares_memory(f.args[0], X) and f.args[0].dtype == np.float32
    traj = rn.simulate(rn.RMSProp(lr=0.01), f, np.zeros(4), 2000, dtype="float32")
    assert traj.x.dtype == np.float32 and traj.gap[-1] < 1e-4


@pytest.mark.parametrize("X, y, error, message", [
    (np.ones(3), np.ones(3), ValueError, r"X must be a non-empty matrix"),
    (np.ones((3, 2)), np.ones(2), ValueError, r"y must have shape \(3,\)"),
    (np.ones((3, 2)), np.ones(3, np.float32), TypeError, "y must have the dtype of X"),
    (np.ones((3, 2)), np.array([0.0, 1.0, 2.0]), ValueError, "y must hold labels 0 and 1"),
    (np.full((3, 2), np.nan), np.ones(3), ValueError, "X must be finite"),
])
def test_bad_logistic_data(X, y, error, message):
    with pytest.raises(error, match=message):
        classics.logistic_regression(X, y)


def test_classics_run_in_sweeps_and_converge():
    res = rn.sweep(rn.RMSProp, classics.booth(), (0.0, 0.0), 3000, grid={"lr": [1e-2, 3e-2]}, tol=1e-3,
                   progress=False)
    assert (res.steps_to_tol[:, 0] > 0).all() and not res.diverged.any()
    traj = rn.simulate(rn.Adam(lr=0.05), classics.beale(), (1.0, 1.0), 5000)
    assert np.abs(traj.x[-1] - (3.0, 0.5)).max() < 1e-2
