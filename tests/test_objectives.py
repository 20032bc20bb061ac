"""Quadratic objectives."""

import math

import numba

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


# --------------------------------------------------------------------------- Objective: users' own functions

from user_functions import chapter, chapter_grad, rosen, rosen_grad  # noqa: E402 (tests/ is on sys.path)

CHAPTER_H = np.array([0.2, 4.0])


def chapter_objective(**kwargs):
    return rn.Objective(chapter, chapter_grad, 2, minimum=(0.0, 0.0), args=(CHAPTER_H,), **kwargs)


def test_objective_of_the_chapter_quadratic_runs_as_the_builtin(dtype):
    """The same gradient arithmetic as the built-in quadratic: the iterates are
    equal bit for bit; the values agree to rounding (summed differently)."""
    opt = rn.RMSProp(lr=0.4)
    mine = rn.simulate(opt, chapter_objective(), (-5.0, -2.0), 50, dtype=dtype)
    builtin = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 50, dtype=dtype)
    np.testing.assert_array_equal(mine.x, builtin.x)
    np.testing.assert_allclose(mine.loss, builtin.loss, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-30)
    assert mine.x.dtype == dtype and mine.objective.f_star == 0.0
    assert round(float(mine.x[20, 0]), 6) == -0.010599  # the chapter's published number


@pytest.mark.parametrize("opt, steps", [(rn.RMSProp(lr=1e-3), 300), (rn.Adam(lr=1e-2), 300),
                                       (rn.RMSProp(lr=1e-3, centered=True, momentum=0.5), 100)],
                         ids=["rmsprop", "adam", "centered-momentum"])
def test_objective_compiled_agrees_with_reference(opt, steps, dtype):
    """Rosenbrock's valley amplifies the last-bit differences between the rules and
    the reference over long runs (centered with momentum most), hence the run lengths."""
    obj = rn.Objective(rosen, rosen_grad, 2, minimum=(1.0, 1.0))
    cpu = rn.simulate(opt, obj, (-1.5, 2.0), steps, dtype=dtype)
    ref = rn.simulate(opt, obj, (-1.5, 2.0), steps, dtype=dtype, backend="reference")
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(cpu.x, ref.x, rtol=tol, atol=tol)
    np.testing.assert_allclose(cpu.loss, ref.loss, rtol=tol, atol=tol)


def test_sweep_on_an_objective_is_simulate_bit_for_bit():
    obj = rn.Objective(rosen, rosen_grad, 2, minimum=(1.0, 1.0))
    lrs = [1e-4, 1e-3, 3e-3]
    res = rn.sweep(rn.RMSProp, obj, (-1.5, 2.0), 400, grid={"lr": lrs}, record=100, tol=[1.0, 1e-2], progress=False)
    for k, lr in enumerate(lrs):
        traj = rn.simulate(rn.RMSProp(lr=lr), obj, (-1.5, 2.0), 400)
        np.testing.assert_array_equal(res.final_x[k], traj.x[-1])
        np.testing.assert_array_equal(res.loss[k], traj.loss[::100])
        for j, tol in enumerate(res.tol):
            below = np.flatnonzero(traj.gap < tol)
            assert res.steps_to_tol[k, j] == (below[0] if below.size else -1)


def test_issue_example_reaches_rosenbrock_minimum():
    obj = rn.Objective(value=rosen, grad=rosen_grad, dim=2, minimum=(1.0, 1.0))
    traj = rn.simulate(rn.RMSProp(lr=1e-3), obj, x0=(-1.5, 2.0), steps=20_000)
    assert np.abs(traj.x[-1] - 1.0).max() < 2e-3 and traj.gap[-1] < 1e-3 and not traj.diverged
    assert rn.analysis.fit_rate(traj).found is not None


def test_noise_is_seeded_and_matches_reference():
    obj = chapter_objective(noise=0.5)
    a = rn.simulate(rn.RMSProp(lr=0.01), obj, (1.0, 1.0), 50, seed=3)
    b = rn.simulate(rn.RMSProp(lr=0.01), obj, (1.0, 1.0), 50, seed=3)
    ref = rn.simulate(rn.RMSProp(lr=0.01), obj, (1.0, 1.0), 50, seed=3, backend="reference")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_allclose(a.x, ref.x, rtol=1e-12)
    quad = rn.simulate(rn.RMSProp(lr=0.01), rn.quadratic_2d(noise=0.5), (1.0, 1.0), 50, seed=3)
    np.testing.assert_array_equal(a.x, quad.x)  # the same noise stream as the built-in objective


def _flat(x):
    return 1.0


def _runaway(x, out):
    out[0] = -1e300
    out[1] = 0.0


def _reciprocal(x):
    return 1.0 / x[0]


def _reciprocal_grad(x, out):
    out[0] = -1.0 / (x[0] * x[0])
    out[1] = 0.0


def test_a_diverging_objective_is_reported_not_raised():
    # The value stays 1 at x = inf: the kernels still stop the run there.
    runaway = rn.Objective(_flat, _runaway, 2, f_star=0.0)
    traj = rn.simulate(rn.SGD(lr=1e10), runaway, (0.0, 0.0), 10)
    assert traj.diverged_at == 1 and np.isnan(traj.loss[2:]).all()
    res = rn.sweep(rn.SGD, runaway, (0.0, 0.0), 10, grid={"lr": [1e-300, 1e10]}, progress=False)
    assert res.diverged_at.tolist() == [-1, 1]
    # A division by zero in an @njit function gives inf (error_model numpy), not ZeroDivisionError.
    pole = rn.Objective(numba.njit(_reciprocal), numba.njit(_reciprocal_grad), 2, f_star=0.0)
    traj = rn.simulate(rn.SGD(lr=0.1), pole, (0.0, 1.0), 5)
    assert traj.diverged_at == 0


def _python_helper(v):
    return 2.0 * v


def _uncompilable(x, h):
    return _python_helper(x[0])  # a plain Python function: Numba cannot call it


class _CallableObject:
    def __call__(self, x, h):
        return x[0]


def _returns_array(x, h):
    return x * 2.0


@pytest.mark.parametrize("value, error, message", [
    (_uncompilable, TypeError, r"value function '_uncompilable' \(.*test_objectives.py:\d+\) cannot run inside "
                               r"rmsnum's kernels: Numba cannot compile it in nopython mode.*_python_helper"),
    (_CallableObject(), TypeError, "value must be a Python function, an @numba.njit function"),
    (42, TypeError, "value must be a Python function"),
    (_returns_array, TypeError, r"value function '_returns_array' .* must return a real number, it returns array"),
    (_flat, TypeError, r"value function '_flat' .* cannot run inside rmsnum's kernels, which call it as "
                       r"value\(x, \*args\) with 1 extra argument.*"
                       r"Signature mismatch"),
])
def test_functions_numba_cannot_run_are_refused_by_name(value, error, message):
    with pytest.raises(error, match=message):
        rn.Objective(value, chapter_grad, 2, args=(CHAPTER_H,))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dim=0), ValueError, "dim must be an integer >= 1"),
    (dict(dim=2.0), TypeError, "dim must be an integer"),
    (dict(minimum=(1.0,)), ValueError, r"minimum must have shape \(2,\)"),
    (dict(minimum=(1.0, np.nan)), ValueError, "minimum must be finite"),
    (dict(minimum="ab"), TypeError, "minimum must be a sequence"),
    (dict(f_star=np.inf), ValueError, "f_star must be a finite number"),
    (dict(args=[CHAPTER_H, "x"]), TypeError, r"args\[1\] must be a NumPy array or a real number"),
    (dict(args=CHAPTER_H), TypeError, "args must be a tuple"),
    (dict(args=(np.array(["a", "b"]),)), TypeError, r"args\[0\] must be a numeric array"),
    (dict(noise=-1.0), ValueError, "noise"),
])
def test_bad_objective_arguments(kwargs, error, message):
    arguments = dict(dim=2, args=(CHAPTER_H,))
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        rn.Objective(chapter, chapter_grad, **arguments)


def test_unknown_f_star_is_a_clear_error_only_where_needed():
    obj = rn.Objective(chapter, chapter_grad, 2, args=(CHAPTER_H,))
    assert obj.f_star is None and obj.minimum is None
    traj = rn.simulate(rn.SGD(lr=0.1), obj, (1.0, 1.0), 5)  # runs without f*
    with pytest.raises(ValueError, match="has no known minimum value f"):
        traj.gap
    with pytest.raises(ValueError, match="has no known minimum"):
        obj.minimizer
    with pytest.raises(ValueError, match="tol needs the minimum value f"):
        rn.sweep(rn.SGD, obj, (1.0, 1.0), 5, grid={"lr": [0.1]}, tol=1e-3, progress=False)
    with pytest.raises(TypeError, match="objective must be a Quadratic or an Objective"):
        rn.simulate(rn.SGD(lr=0.1), chapter, (1.0, 1.0), 5)


def test_args_are_shared_read_only_and_numbers_follow_the_dtype():
    h = np.array([0.2, 4.0])
    obj = rn.Objective(lambda x, h, c: c * h[0] * x[0], lambda x, out, h, c: None, 2, args=(h, 3))
    assert np.shares_memory(obj.args[0], h) and h.flags.writeable and not obj.args[0].flags.writeable
    P = obj._kernel_args(np.float32)
    assert P[1] is obj.args[0] and type(P[2]) is np.float32 and P[2] == 3


def test_value_and_grad_take_batches():
    obj = chapter_objective()
    x = np.array([[[1.0, 1.0], [2.0, 0.0]]])
    np.testing.assert_array_equal(obj.value(x), [[2.1, 0.4]])
    np.testing.assert_array_equal(obj.grad(x), [[[0.2, 4.0], [0.4, 0.0]]])
    assert obj.grad(np.ones(2, np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="last dimension 2"):
        obj.value(np.ones(3))
    assert "chapter" in repr(obj)


def test_sweep_on_an_objective_saves_and_loads(tmp_path):
    obj = rn.Objective(rosen, rosen_grad, 2, minimum=(1.0, 1.0), name="Rosenbrock by hand")
    res = rn.sweep(rn.RMSProp, obj, (-1.5, 2.0), 50, grid={"lr": [1e-3, 1e-2]}, progress=False)
    res.save(tmp_path / "r.npz")
    back = rn.SweepResult.load(tmp_path / "r.npz")
    assert back.objective.name == "Rosenbrock by hand" and back.objective.functions == (rosen, rosen_grad)
    np.testing.assert_array_equal(back.gap, res.gap)
    local = rn.Objective(lambda x: x[0] * x[0], lambda x, out: None, 1, f_star=0.0)
    res = rn.sweep(rn.SGD, local, (1.0,), 5, grid={"lr": [0.1]}, progress=False)
    res.save(tmp_path / "local.npz")
    with pytest.raises(ValueError, match=r"cannot be imported here; give it again"):
        rn.SweepResult.load(tmp_path / "local.npz")
    assert rn.SweepResult.load(tmp_path / "local.npz", objective=local).objective is local
    with pytest.raises(ValueError, match="dimension 1"):
        rn.SweepResult.load(tmp_path / "local.npz", objective=obj)


# --------------------------------------------------------------------------- digests of what an objective computes

import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

from rmsnum import classics  # noqa: E402
from rmsnum.objectives import _CodeHasher  # noqa: E402

_GRAD = "def f_grad(x, out):\n    out[0] = x[0]\n"


def _exec_digest(source, **namespace):
    """The digest of an Objective whose value ``f`` is defined by ``source``, executed
    in a fresh namespace (so each call makes new functions of the same names)."""
    scope = {"np": np, "numba": numba, "math": math, **namespace}
    exec(textwrap.dedent(source) + _GRAD, scope)
    return rn.Objective(scope["f"], scope["f_grad"], 1)._digest()


_HELPER = """
@numba.njit
def inner(v):
    return {inner} * v

@numba.njit
def helper(v, c={default}):
    return c * inner(v)

def f(x):
    return helper(x[0])
"""


def _closure(c):
    def f(x):
        return c * x[0]
    return f


_SCALED = "def f(x):\n    return SCALE * x[0]\n"
_WEIGHTED = "def f(x):\n    return W[0] * x[0]\n"


@pytest.mark.parametrize("first, first_globals, second, second_globals", [
    ("def f(x):\n    return x[0] * x[0]\n", {}, "def f(x):\n    return x[0] + x[0]\n", {}),
    ("def f(x):\n    return 2.0 * x[0]\n", {}, "def f(x):\n    return 3.0 * x[0]\n", {}),
    (_SCALED, {"SCALE": 2.0}, _SCALED, {"SCALE": 3.0}),
    (_WEIGHTED, {"W": np.array([1.0])}, _WEIGHTED, {"W": np.array([2.0])}),
    (_WEIGHTED, {"W": np.array([1.0])}, _WEIGHTED, {"W": np.array([1.0], np.float32)}),
    (_HELPER.format(inner=2.0, default=1.0), {}, _HELPER.format(inner=3.0, default=1.0), {}),
    (_HELPER.format(inner=2.0, default=1.0), {}, _HELPER.format(inner=2.0, default=5.0), {}),
], ids=["body", "constant", "global number", "global array", "global array dtype", "called helper's body",
        "called helper's default"])
def test_digest_tells_apart_functions_of_the_same_name(first, first_globals, second, second_globals):
    digest = _exec_digest(first, **first_globals)
    assert digest != _exec_digest(second, **second_globals)
    # The same source made again (new function objects of the same names) gives the same digest.
    assert digest == _exec_digest(first, **first_globals)


def _steeper_grad(x, out, h):
    out[0] = 2.0 * h[0] * x[0]
    out[1] = 2.0 * h[1] * x[1]


def test_digest_covers_closures_args_and_the_objective_numbers():
    grad = numba.njit(chapter_grad)
    h = np.array([0.2, 4.0])
    base = rn.Objective(chapter, chapter_grad, 2, args=(h,))
    assert base._digest() == rn.Objective(numba.njit(chapter), grad, 2, args=(h.copy(),))._digest()
    for other in (rn.Objective(chapter, chapter_grad, 2, args=(np.array([0.2, 8.0]),)),
                  rn.Objective(chapter, chapter_grad, 2, args=(h,), noise=0.1),
                  rn.Objective(chapter, chapter_grad, 2, args=(h,), f_star=0.0),
                  rn.Objective(chapter, _steeper_grad, 2, args=(h,))):
        assert other._digest() != base._digest()
    def flat(x, out):
        out[0] = 0.0

    assert rn.Objective(_closure(2.0), flat, 1)._digest() != rn.Objective(_closure(3.0), flat, 1)._digest()
    assert rn.Objective(_closure(2.0), flat, 1)._digest() == rn.Objective(_closure(2.0), flat, 1)._digest()


def _recursive_a(n):
    return 0 if n <= 0 else _recursive_b(n - 1)


def _recursive_b(n):
    return _recursive_a(n - 1) + 1


def _uses_a_set(word):
    return word in {"alpha", "beta", "gamma", "delta"}


_DIGEST_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np, rmsnum as rn
from rmsnum import classics
from rmsnum.objectives import _CodeHasher
from user_functions import chapter, chapter_grad, rosen, rosen_grad
import test_objectives as t

def code(fn):
    hasher = _CodeHasher()
    hasher.value(fn)
    return hasher.hexdigest()

X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0.0, 1.0, 0.0, 1.0])
print(json.dumps([rn.Objective(rosen, rosen_grad, 2)._digest(),
                  rn.Objective(chapter, chapter_grad, 2, args=(np.array([0.2, 4.0]),))._digest(),
                  classics.rosenbrock(3)._digest(), classics.booth()._digest(), classics.beale()._digest(),
                  classics.logistic_regression(X, y)._digest(), code(t._recursive_a), code(t._uses_a_set)]))
"""


def _digests_here():
    def code(fn):
        hasher = _CodeHasher()
        hasher.value(fn)
        return hasher.hexdigest()

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    return [rn.Objective(rosen, rosen_grad, 2)._digest(),
            rn.Objective(chapter, chapter_grad, 2, args=(np.array([0.2, 4.0]),))._digest(),
            classics.rosenbrock(3)._digest(), classics.booth()._digest(), classics.beale()._digest(),
            classics.logistic_regression(X, y)._digest(), code(_recursive_a), code(_uses_a_set)]


def test_digest_is_the_same_in_every_process():
    tests = os.path.dirname(os.path.abspath(__file__))
    here = _digests_here()
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT.format(tests=tests)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=300)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_classics_have_stable_distinct_digests():
    made = [classics.rosenbrock(), classics.rosenbrock(), classics.rosenbrock(3), classics.rosenbrock(a=2.0),
            classics.booth(), classics.beale(), classics.booth(noise=0.1)]
    digests = [obj._digest() for obj in made]
    assert digests[0] == digests[1]
    assert len(set(digests)) == len(digests) - 1
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests)


_EDITED_MODULE = '''
def value(x):
    return 0.5 * (x[0] * x[0] + {c} * x[1] * x[1])


def grad(x, out):
    out[0] = x[0]
    out[1] = {c} * x[1]
'''


def _import_edited(path, c):
    """The objective of the module file ``path`` written with curvature ``c``, imported
    afresh under one fixed module name (as a user re-running a script after an edit)."""
    path.write_text(_EDITED_MODULE.format(c=c))
    spec = importlib.util.spec_from_file_location("rmsnum_test_edited_objective", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return rn.Objective(module.value, module.grad, 2, minimum=(0.0, 0.0))


def test_a_checkpoint_is_refused_after_the_objective_is_edited(tmp_path, monkeypatch):
    # Needs rmsnum/sweep.py's _fingerprint to include Objective._digest() (wired by the lead, issue 17 item 5).
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc of the edited file
    source = tmp_path / "edited_objective.py"
    run = dict(x0=(1.0, 1.0), steps=20, grid={"lr": [0.01, 0.1, 0.2]}, chunk_size=1, checkpoint=tmp_path / "ck",
               progress=False)
    first = rn.sweep(rn.SGD, _import_edited(source, 4.0), **run)
    again = rn.sweep(rn.SGD, _import_edited(source, 4.0), **run)  # the same code imported again resumes
    np.testing.assert_array_equal(first.final_x, again.final_x)
    edited = _import_edited(source, 8.0)
    with pytest.raises(ValueError, match="different"):
        rn.sweep(rn.SGD, edited, **run)
    fresh = rn.sweep(rn.SGD, edited, **{**run, "checkpoint": tmp_path / "fresh"})
    assert not np.array_equal(fresh.final_x, first.final_x)
