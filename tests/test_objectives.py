"""Quadratic objectives."""

import math

import numpy as np
import pytest

import rmsnum as rn


def test_chapter_objective():
    q = rn.quadratic_2d()
    x = np.array([[-5.0, -2.0], [1.0, 3.0]])
    np.testing.assert_allclose(q.value(x), 0.1 * x[:, 0] ** 2 + 2 * x[:, 1] ** 2)
    np.testing.assert_allclose(q.grad(x), np.stack([0.2 * x[:, 0], 4 * x[:, 1]], axis=1))
    assert q.is_diagonal and q.f_star == 0.0


def test_rotated_objective_is_the_exercise_formula():
    q = rn.rotated_quadratic_2d()
    rng = np.random.default_rng(0)
    for x1, x2 in rng.normal(size=(20, 2)):
        assert q.value([x1, x2]) == pytest.approx(0.1 * (x1 + x2) ** 2 + 2 * (x1 - x2) ** 2, rel=1e-13)
    np.testing.assert_allclose(q.curvatures, [0.4, 8.0])


def test_true_rotation_keeps_curvatures_and_value():
    q = rn.quadratic_2d()
    r = q.rotated(0.3)
    np.testing.assert_allclose(r.curvatures, [0.2, 4.0])
    c, s = math.cos(0.3), math.sin(0.3)
    x = np.array([1.5, -0.5])
    assert r.value(np.array([[c, -s], [s, c]]) @ x) == pytest.approx(q.value(x))
    np.testing.assert_allclose(q.rotated(2 * math.pi).matrix, q.matrix, atol=1e-14)


def test_minimizer_and_f_star_of_dense_quadratic():
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    b = np.array([1.0, 2.0])
    q = rn.Quadratic(A, b)
    np.testing.assert_allclose(A @ q.minimizer, b)
    assert q.f_star == pytest.approx(q.value(q.minimizer))
    np.testing.assert_allclose(q.grad(q.minimizer), 0, atol=1e-14)


def test_with_noise_copies():
    q = rn.quadratic_2d().with_noise(0.1)
    assert q.noise == 0.1 and rn.quadratic_2d().noise == 0.0
    assert rn.quadratic_2d(noise=0.2).noise == 0.2


def test_arrays_are_read_only():
    q = rn.quadratic_2d()
    with pytest.raises(ValueError):
        q.A[0] = 5


@pytest.mark.parametrize("args, kwargs, error, message", [
    (([1.0, -1.0],), {}, ValueError, "positive definite"),
    (([1.0, 0.0],), {}, ValueError, "positive definite"),
    (([[1.0, 2.0], [0.0, 1.0]],), {}, ValueError, "symmetric"),
    (([[1.0, 2.0], [2.0, 1.0]],), {}, ValueError, "positive definite"),
    (([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],), {}, ValueError, "square"),
    (([],), {}, ValueError, "non-empty"),
    (([1.0, math.inf],), {}, ValueError, "finite"),
    (([1.0, 2.0], [1.0]), {}, ValueError, "b must have shape"),
    (([1.0, 2.0], [1.0, math.nan]), {}, ValueError, "b must be finite"),
    (([1.0, 2.0],), dict(noise=-1.0), ValueError, "noise"),
])
def test_bad_quadratics(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        rn.Quadratic(*args, **kwargs)


def test_rotation_needs_two_dimensions():
    with pytest.raises(ValueError, match="2-D"):
        rn.Quadratic([1.0, 2.0, 3.0]).rotated(0.1)


def test_point_dimension_is_checked():
    with pytest.raises(ValueError, match="last dimension 2"):
        rn.quadratic_2d().value([1.0, 2.0, 3.0])
