"""The CUDA backend, against the CPU backend.

- Unmarked tests run everywhere: importing rmsnum never touches CUDA, and a
  missing numba-cuda or GPU gives a clear error.
- ``cuda`` tests run the backend on a GPU or under the CUDA simulator (CI runs
  ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda.py``). The
  simulator runs the kernels as Python with IEEE arithmetic, so results equal
  the CPU's bit for bit; on a GPU, NVVM contracts multiply-adds into FMAs and a
  step may differ by up to 4 ulp.
- ``gpu`` tests need a real device.
- The PTX tests compile the kernels for compute capability 9.0 with
  ``numba.cuda.compile_ptx`` (numba-cuda with the toolkit wheels, no GPU needed).
  They skip only where libNVVM itself is missing (the ``nvvm`` fixture checks
  once); any error compiling rmsnum's kernels fails them.
"""

import functools
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import OPTIMIZERS, RTOL
from numba.core import config
from test_training import small_problem

import rmsnum as rn
from rmsnum.backends import cpu
from rmsnum.backends import cuda as cuda_backend

SIMULATOR = config.ENABLE_CUDASIM
ULPS = 0 if SIMULATOR else 4

# Under the simulator the kernels run as Python on NumPy scalars, which warn on
# float overflow (diverging runs) and on the noise hash's intended uint64 wraparound.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def assert_ulps(actual, expected, ulps=ULPS):
    """Equal within ``ulps`` units in the last place (NaNs and infinities must match exactly)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    exact = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    finite = np.isfinite(expected) & np.isfinite(actual)
    close = finite & (np.abs(actual - expected) <= ulps * np.spacing(np.abs(expected)))
    assert np.all(exact | close), f"differs by more than {ulps} ulp:\n{actual}\n{expected}"


def assert_close_run(actual, expected, dtype):
    """Whole trajectories: bit for bit under the simulator; on a GPU the per-step ulps
    may compound, so a relative tolerance on the scale of the run."""
    if SIMULATOR:
        assert_ulps(actual, expected, 0)
    else:
        scale = np.nanmax(np.abs(expected)) if np.isfinite(expected).any() else 1.0
        np.testing.assert_allclose(actual, expected, rtol=100 * RTOL[dtype], atol=100 * RTOL[dtype] * scale)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Launches of several small blocks, and step threads that stride over several elements."""
    monkeypatch.setattr(cuda_backend, "THREADS_PER_BLOCK", 4)
    monkeypatch.setattr(cuda_backend, "STEP_BLOCKS", 2)


# --------------------------------------------------------------------------- everywhere


def test_importing_and_using_the_cpu_never_touches_cuda():
    code = (
        "import sys, numpy as np, rmsnum as rn\n"
        "rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5, -2), 3)\n"
        "x = np.ones(3); opt = rn.RMSProp(lr=0.1); opt.step(x, x.copy(), opt.init(x))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda', 'cuda'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def no_simulator(monkeypatch):
    monkeypatch.setattr(config, "ENABLE_CUDASIM", False)


def _find_spec_without(monkeypatch, present: bool):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "numba_cuda":
            return real("numpy") if present else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


class DeviceLike:
    """Claims to be a device array (only the interface's presence is checked first)."""

    __cuda_array_interface__ = {"shape": (2,), "typestr": "<f8", "data": (0, False), "version": 3}


CUDA_CALLS = {
    "sweep": lambda: rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 5, {"lr": [0.1]}, backend="cuda"),
    "simulate": lambda: rn.simulate(rn.RMSProp(lr=0.1), rn.quadratic_2d(), (-5, -2), 5, backend="cuda"),
    "init": lambda: rn.RMSProp(lr=0.1).init(DeviceLike()),
    "step": lambda: rn.RMSProp(lr=0.1).step(DeviceLike(), DeviceLike(), None),
    "train": lambda: rn.train(rn.RMSProp(lr=0.01), small_problem(), 10, 1, backend="cuda"),
    "train_sweep": lambda: rn.train_sweep(rn.RMSProp, small_problem(), 10, 1, {"lr": [0.01]}, backend="cuda",
                                          progress=False),
}


@pytest.mark.parametrize("call", list(CUDA_CALLS))
def test_without_numba_cuda_the_error_says_how_to_install_it(call, monkeypatch, no_simulator, tmp_path):
    _find_spec_without(monkeypatch, present=False)
    with pytest.raises(ImportError, match=r'numba-cuda package, which is not installed: pip install "rmsnum\[cuda\]"'):
        CUDA_CALLS[call]()


@pytest.mark.parametrize("call", list(CUDA_CALLS))
def test_without_a_gpu_the_error_says_so(call, monkeypatch, no_simulator):
    _find_spec_without(monkeypatch, present=True)
    monkeypatch.setattr(cuda_backend.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="found no usable NVIDIA GPU"):
        CUDA_CALLS[call]()


def test_a_failed_cuda_sweep_creates_no_checkpoint(monkeypatch, no_simulator, tmp_path):
    _find_spec_without(monkeypatch, present=False)
    with pytest.raises(ImportError):
        rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 5, {"lr": [0.1]}, backend="cuda",
                 checkpoint=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


# --------------------------------------------------------------------------- on the device (or simulator)

cuda = pytest.mark.cuda


def _device(arr):
    return cuda_backend.cuda.to_device(arr)


def _host(arr):
    return arr.copy_to_host()


@cuda
def test_step_matches_the_cpu_step(optimizer, dtype):
    """Each step starts the device from the CPU's values, so differences do not compound."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7)).astype(dtype)  # 21 elements over 2 blocks of 4 threads
    state = optimizer.init(x)
    for _ in range(4):
        g = (rng.normal(size=x.shape) + x).astype(dtype)
        d_x, d_g = _device(x), _device(g)
        d_state = optimizer.init(d_x)
        for slot in state.slots:
            setattr(d_state, slot, _device(getattr(state, slot)))
        d_state.t, d_state.d1, d_state.d2 = state.t, state.d1, state.d2
        optimizer.step(d_x, d_g, d_state)
        optimizer.step(x, g, state)
        # a clip of the norm sums the squares in a tree on the device, in np.dot's order on the CPU
        ulps = ULPS + (16 if optimizer.clip_norm else 0)
        assert_ulps(_host(d_x), x, ulps)
        for slot in state.slots:
            assert_ulps(_host(getattr(d_state, slot)), getattr(state, slot), ulps)
        assert (d_state.t, d_state.d1, d_state.d2) == (state.t, state.d1, state.d2)


@cuda
def test_init_puts_the_state_on_the_device(dtype):
    opt = rn.RMSProp(lr=0.1, momentum=0.9, centered=True, initial_s=0.5)
    state = opt.init(_device(np.zeros((2, 5), dtype)))
    assert state.slots == ("s", "m", "g_avg")
    np.testing.assert_array_equal(_host(state.s), np.full((2, 5), 0.5, dtype))
    np.testing.assert_array_equal(_host(state.m), np.zeros((2, 5), dtype))
    assert _host(state.s).dtype == np.dtype(dtype) and state.d1.dtype == np.dtype(dtype)


@cuda
def test_step_rejects_bad_device_input_before_touching_anything():
    opt = rn.RMSProp(lr=0.1, momentum=0.5)
    x = np.arange(6, dtype=np.float64)
    d_x, d_g = _device(x), _device(x + 1)
    state = opt.init(d_x)
    host_state = opt.init(x)
    aliased = opt.init(d_x)
    aliased.s = d_x
    cases = [
        ((d_x, x + 1, state), TypeError, "g must be a CUDA device array like x"),
        ((d_x, _device(np.ones(5)), state), ValueError, "g must have the shape of x"),
        ((d_x, _device(np.ones(6, np.float32)), state), TypeError, "g must have the dtype of x"),
        ((_device(np.arange(6)), _device(np.arange(6)), state), TypeError, "x must be float32 or float64"),
        ((_device(np.zeros((2, 6)))[:, ::2], _device(np.zeros((2, 3))), state), ValueError, "C-contiguous"),
        ((d_x, d_g, host_state), ValueError, "state.s must be a CUDA device array like x"),
        ((d_x, d_g, aliased), ValueError, "state.s shares memory with x"),
        ((d_x, d_g, rn.Adam(lr=0.1).init(d_x)), ValueError, "state belongs to another optimizer"),
        ((d_x, d_g, None), TypeError, "state must be an OptimizerState"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            opt.step(*args)
    np.testing.assert_array_equal(_host(d_x), x)
    assert state.t == 0 and not _host(state.s).any() and not _host(state.m).any()


@cuda
def test_simulate_matches_the_cpu(optimizer, dtype):
    gpu = rn.simulate(optimizer, rn.quadratic_2d(), (-5, -2), 25, dtype=dtype, backend="cuda")
    ref = rn.simulate(optimizer, rn.quadratic_2d(), (-5, -2), 25, dtype=dtype)
    assert gpu.diverged_at == ref.diverged_at and gpu.provenance["backend"] == "cuda"
    assert_close_run(gpu.x, ref.x, dtype)
    assert_close_run(gpu.loss, ref.loss, dtype)
    for slot in ref.state.slots:
        assert_close_run(getattr(gpu.state, slot), getattr(ref.state, slot), dtype)
    assert (gpu.state.t, gpu.state.d1.dtype) == (ref.state.t, ref.state.d1.dtype)


@cuda
def test_simulate_the_chapters_run():
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), (-5, -2), 20, backend="cuda")
    assert traj.x[-1, 0] == pytest.approx(-0.010598672134113715, rel=1e-15 if SIMULATOR else 1e-13)
    assert abs(traj.x[-1, 1]) < 1e-12


@cuda
def test_simulate_noisy_dense_quadratic_and_divergence(dtype):
    A = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    noisy = rn.Quadratic(A, b=np.array([1.0, 0.0, -1.0]), noise=0.3)
    for opt, objective, steps in [(rn.RMSProp(lr=0.05, centered=True), noisy, 30),
                                  (rn.SGD(lr=3.0), rn.quadratic_2d(), 200)]:
        gpu = rn.simulate(opt, objective, np.ones(objective.dim), steps, seed=7, dtype=dtype, backend="cuda")
        ref = rn.simulate(opt, objective, np.ones(objective.dim), steps, seed=7, dtype=dtype)
        assert gpu.diverged_at == ref.diverged_at
        assert_close_run(gpu.x[: (ref.diverged_at or steps) + 1], ref.x[: (ref.diverged_at or steps) + 1], dtype)
    assert ref.diverged_at is not None and np.isnan(gpu.x[-1]).all()


@cuda
def test_large_quadratics_run_one_block_per_configuration(dtype):
    """Above WIDE_DIM coordinates the threads of a block share one configuration's coordinates;
    the value is reduced in a tree, so the loss may differ from the CPU's in the last bits."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(18, 18))
    dense = rn.Quadratic(M @ M.T / 18 + np.eye(18), b=np.ones(18))
    diagonal = rn.Quadratic(np.linspace(0.1, 4.0, 20), noise=0.1)
    assert min(dense.dim, diagonal.dim) > cuda_backend.WIDE_DIM
    runs = [(rn.RMSProp(lr=0.05, momentum=0.5, centered=True), dense, 8), (rn.Adam(lr=0.1), diagonal, 8),
            (rn.RMSProp.keras(learning_rate=0.05, clipnorm=0.5), dense, 8),  # the norm, reduced in a tree too
            (rn.SGD(lr=1e8), diagonal, 30)]  # the last leaves the quadratic
    for opt, objective, steps in runs:
        gpu = rn.simulate(opt, objective, np.ones(objective.dim), steps, seed=2, dtype=dtype, backend="cuda")
        ref = rn.simulate(opt, objective, np.ones(objective.dim), steps, seed=2, dtype=dtype)
        assert gpu.diverged_at == ref.diverged_at
        eps = np.finfo(dtype).eps
        if opt.clip_norm:  # the gradient's norm, summed in a tree: its scale may differ in the last bits
            np.testing.assert_allclose(gpu.x, ref.x, rtol=50 * eps)
            np.testing.assert_allclose(gpu.loss, ref.loss, rtol=50 * eps, atol=50 * eps * np.abs(ref.loss).max())
        else:
            assert_close_run(gpu.x, ref.x, dtype)
            np.testing.assert_allclose(gpu.loss, ref.loss, rtol=50 * eps)
    assert ref.diverged_at is not None
    grid = {"lr": [0.1, 1e8], "momentum": [0.0, 0.5]}
    gpu = rn.sweep(rn.RMSProp, diagonal, np.ones(20), 6, grid, fixed={"gamma": 1.0, "eps": 1e-30},
                   backend="cuda", chunk_size=3, record=2, progress=False, dtype=dtype)
    ref = rn.sweep(rn.RMSProp, diagonal, np.ones(20), 6, grid, fixed={"gamma": 1.0, "eps": 1e-30},
                   chunk_size=3, record=2, progress=False, dtype=dtype)
    np.testing.assert_array_equal(gpu.diverged_at, ref.diverged_at)
    assert_close_run(gpu.final_x, ref.final_x, dtype)
    np.testing.assert_allclose(gpu.loss, ref.loss, rtol=50 * np.finfo(dtype).eps)


SWEEP_GRID = {"lr": [0.01, 0.4, 40.0], "gamma": [0.9, 1.0], "centered": [False, True], "momentum": [0.0, 0.9]}


def _compare_sweeps(gpu, ref, dtype):
    np.testing.assert_array_equal(gpu.diverged_at, ref.diverged_at)  # the same divergence map, always
    for name in ("final_x", "final_loss", "loss"):
        if getattr(ref, name) is not None:
            assert_close_run(getattr(gpu, name), getattr(ref, name), dtype)
    if ref.steps_to_tol is not None:
        if SIMULATOR:
            np.testing.assert_array_equal(gpu.steps_to_tol, ref.steps_to_tol)
        else:  # a crossing can move by a step when the loss sits on the tolerance
            assert np.abs(gpu.steps_to_tol - ref.steps_to_tol).max() <= 1


@cuda
def test_sweep_matches_the_cpu_in_several_chunks(dtype):
    kwargs = dict(record=5, tol=[1e-2, 1e-4], chunk_size=5, progress=False, dtype=dtype)
    gpu = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 30, SWEEP_GRID, backend="cuda", **kwargs)
    ref = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 30, SWEEP_GRID, **kwargs)
    assert gpu.provenance["backend"] == "cuda"
    assert ref.diverged.any() and not ref.diverged.all()
    _compare_sweeps(gpu, ref, dtype)


@cuda
def test_sweep_with_start_and_seed_axes_on_a_noisy_quadratic():
    grid = {"x0": [[-5.0, -2.0], [1.0, 1.0], [3.0, -1.0]], "seed": [0, 1], "beta2": [0.5, 0.999]}
    kwargs = dict(record="final", progress=False, chunk_size=4)
    noisy = rn.quadratic_2d(noise=0.2)
    gpu = rn.sweep(rn.Adam, noisy, None, 20, grid, fixed={"lr": 0.1}, backend="cuda", **kwargs)
    ref = rn.sweep(rn.Adam, noisy, None, 20, grid, fixed={"lr": 0.1}, **kwargs)
    _compare_sweeps(gpu, ref, "float64")


@cuda
def test_sweep_checkpoints_resume_on_the_gpu_and_are_not_mixed_with_cpu_ones(tmp_path):
    grid = {"lr": [0.05, 0.1, 0.2, 0.4, 0.8], "gamma": [0.5, 0.9]}
    kwargs = dict(chunk_size=3, progress=False)
    first = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 15, grid, backend="cuda",
                     checkpoint=tmp_path / "gpu", **kwargs)
    chunks = sorted((tmp_path / "gpu").glob("chunk-*.npz"))
    assert len(chunks) == 4
    chunks[1].unlink()
    again = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 15, grid, backend="cuda",
                     checkpoint=tmp_path / "gpu", **kwargs)
    np.testing.assert_array_equal(again.final_x, first.final_x)
    assert len(list((tmp_path / "gpu").glob("chunk-*.npz"))) == 4
    rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 15, grid, checkpoint=tmp_path / "cpu", **kwargs)
    with pytest.raises(ValueError, match="checkpoint"):
        rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 15, grid, backend="cuda",
                 checkpoint=tmp_path / "cpu", **kwargs)


@cuda
@pytest.mark.parametrize("case", [(0.05, 0.999, 1e-8), (0.3, 0.9, 1e-3)], ids=["adam-defaults", "large-eps"])
def test_rmsprop_with_eps_outside_and_bias_correction_is_adam_without_momentum(case, dtype):
    """tests/test_equivalence.py on the device: step, simulate and sweep. The two rules compute
    the same formula in the same order: bit for bit under the simulator; on a GPU each kernel is
    contracted into FMAs on its own, so within the tolerances of the GPU-against-CPU tests."""
    lr, b2, e = case
    R = rn.RMSProp(lr, gamma=b2, eps=e, eps_in_sqrt=False, bias_correction=True)
    A = rn.Adam(lr, beta1=0.0, beta2=b2, eps=e)
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=(3, 7)).astype(dtype)  # 21 elements over 2 blocks of 4 threads
    d_xr, d_xa = _device(x0), _device(x0)
    s_r, s_a = R.init(d_xr), A.init(d_xa)
    for _ in range(4):
        g = _device(rng.normal(size=x0.shape).astype(dtype))
        R.step(d_xr, g, s_r)
        A.step(d_xa, g, s_a)
    assert_close_run(_host(d_xr), _host(d_xa), dtype)
    assert_close_run(_host(s_r.s), _host(s_a.s), dtype)
    assert s_r.t == s_a.t == 4 and s_r.d2 == s_a.d2

    noisy = rn.quadratic_2d(noise=0.3)
    run_r = rn.simulate(R, noisy, (-5, -2), 25, seed=3, dtype=dtype, backend="cuda")
    run_a = rn.simulate(A, noisy, (-5, -2), 25, seed=3, dtype=dtype, backend="cuda")
    assert run_r.diverged_at is None and run_a.diverged_at is None
    for name in ("x", "loss"):
        assert_close_run(getattr(run_r, name), getattr(run_a, name), dtype)
    assert_close_run(run_r.state.s, run_a.state.s, dtype)

    # The sweep without gradient noise: the simulator draws the noise in Python per thread and
    # step, which takes minutes for a sweep (simulate above covers the noisy path in seconds).
    kwargs = dict(record=5, tol=[1e-2], chunk_size=3, progress=False, dtype=dtype, backend="cuda")
    quiet = rn.quadratic_2d()
    res_r = rn.sweep(rn.RMSProp, quiet, (-5, -2), 20, {"lr": [0.01, lr, 0.5], "gamma": [0.9, b2]},
                     fixed={"eps": e, "eps_in_sqrt": False, "bias_correction": True}, **kwargs)
    res_a = rn.sweep(rn.Adam, quiet, (-5, -2), 20, {"lr": [0.01, lr, 0.5], "beta2": [0.9, b2]},
                     fixed={"eps": e, "beta1": 0.0}, **kwargs)
    _compare_sweeps(res_r, res_a, dtype)


# --------------------------------------------------------------------------- training

# Centered RMSProp with momentum (preset-torch), bias correction (rmsprop-everything), Adam with
# AMSGrad (preset-adam-torch), a rule without slots (sgd) and the chapter's RMSProp.
TRAIN_OPTIMIZERS = ["rmsprop", "preset-torch", "rmsprop-everything", "preset-adam-torch", "sgd"]
TRAIN_KWARGS = dict(batch_size=8, epochs=3, seed=5, record_every=16)  # 97 rows: each epoch ends with 1


@cuda
@pytest.mark.parametrize("name", TRAIN_OPTIMIZERS)
def test_train_matches_the_cpu(name, dtype):
    problem = small_problem(dtype)
    gpu = rn.train(OPTIMIZERS[name], problem, backend="cuda", **TRAIN_KWARGS)
    ref = rn.train(OPTIMIZERS[name], problem, **TRAIN_KWARGS)
    assert gpu.diverged_at is None and ref.diverged_at is None
    assert gpu.provenance["backend"] == "cuda" and gpu.w.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(gpu.initial, ref.initial)  # the same start and (host-side) minibatch order
    assert_close_run(gpu.w, ref.w, dtype)
    assert_close_run(np.asarray(gpu.b), np.asarray(ref.b), dtype)
    assert_close_run(gpu.loss, ref.loss, dtype)  # float64, from parameters in the working dtype
    assert_close_run(np.asarray(gpu.final_loss), np.asarray(ref.final_loss), dtype)
    for slot in ref.state.slots:
        assert_close_run(getattr(gpu.state, slot), getattr(ref.state, slot), dtype)
    assert gpu.state.t == ref.state.t == gpu.steps
    assert_close_run(np.array([gpu.state.d1, gpu.state.d2]), np.array([ref.state.d1, ref.state.d2]), dtype)


@cuda
def test_train_reports_divergence_as_the_cpu_does(dtype):
    problem = small_problem(dtype)
    gpu = rn.train(rn.SGD(lr=1e10), problem, 10, 2, record_every=10, backend="cuda")
    ref = rn.train(rn.SGD(lr=1e10), problem, 10, 2, record_every=10)
    assert ref.diverged_at is not None and gpu.diverged_at == ref.diverged_at
    assert not np.isfinite(gpu.final_loss) and np.isnan(gpu.loss[gpu.diverged_at:]).all()
    assert_close_run(gpu.loss, ref.loss, dtype)
    assert_close_run(np.append(gpu.w, gpu.b), np.append(ref.w, ref.b), dtype)  # the parameters at divergence
    assert gpu.state.t == ref.state.t == ref.diverged_at


@cuda
def test_train_sweep_matches_the_cpu(dtype):
    """Two chunks in flight on two streams, a diverging configuration, and a seed axis."""
    problem = small_problem(dtype)
    kwargs = dict(batch_size=8, epochs=2, record_every=16, progress=False, chunk_size=3)
    grid = {"lr": [0.05, 1e10], "beta": [0.0, 0.9]}
    gpu = rn.train_sweep(rn.Momentum, problem, grid=grid, backend="cuda", **kwargs)
    ref = rn.train_sweep(rn.Momentum, problem, grid=grid, **kwargs)
    assert gpu.provenance["backend"] == "cuda" and gpu.final_x.dtype == np.dtype(dtype)
    assert ref.diverged[1].all() and not ref.diverged[0].any()
    _compare_sweeps(gpu, ref, dtype)
    grid = {"lr": [0.01, 0.05], "seed": [0, 1]}
    fixed = {"amsgrad": True, "weight_decay": 0.1}
    gpu = rn.train_sweep(rn.Adam.torch, problem, grid=grid, fixed=fixed, backend="cuda", **kwargs)
    ref = rn.train_sweep(rn.Adam.torch, problem, grid=grid, fixed=fixed, **kwargs)
    _compare_sweeps(gpu, ref, dtype)


# --------------------------------------------------------------------------- PTX


def _kernel_arguments(opt, dtype, n=2):
    """Arguments of an ``n``-D sweep kernel launch (one block of 4 lanes) and of a step."""
    dt = np.dtype(dtype)
    w = 4
    blocked = lambda *shape: np.zeros((1, *shape, w), dt)  # noqa: E731
    C, like = cpu.coefficient_table([opt.coefficients(dt)], dt)
    decays = opt.decays(dt)
    slots = tuple(blocked(n) if slot in opt.slots else None for slot in opt.spec.slots) or (None,)
    sweep = (blocked(n), slots, None if decays is None else blocked(2), None if decays is None else blocked(4),
             np.zeros((1, C.shape[0], w), dt), (np.ones(n, dt), np.zeros(n, dt)), dt.type(1), dt.type(0.5),
             dt.type(0), None, dt.type(0), np.zeros(1, dt), 10, 1, blocked(11), None, np.zeros((1, w), dt),
             np.zeros((1, w), np.int64), np.zeros((1, 1, w), np.int64))
    numeric = tuple(c for c in opt.coefficients(dt) if not isinstance(c, rn._neutral.Neutral)) or (dt.type(1),)
    step = (np.zeros(8, dt), np.zeros(8, dt), tuple(np.zeros(8, dt) if s is not None else None for s in slots),
            dt.type(1), dt.type(1), numeric)
    return like, sweep, step


@pytest.fixture
def hopper(monkeypatch):
    """compile_ptx asks the (absent) driver for the current device when a kernel calls
    device functions; the target is given by cc= anyway: answer compute capability 9.0."""
    import numba.cuda.dispatcher

    class Hopper:
        compute_capability = (9, 0)

    monkeypatch.setattr(numba.cuda.dispatcher, "get_current_device", lambda: Hopper())


def _ptx(dispatcher, args):
    from numba import typeof
    from numba.core import types

    from numba import cuda

    sig = tuple(types.none if a is None else typeof(a) for a in args)
    ptx, _ = cuda.compile_ptx(dispatcher.py_func, sig, cc=(9, 0))
    return ptx


def _nvvm_missing_errors():
    """The errors that mean "no libNVVM here", and nothing else: numba-cuda raises
    NvvmSupportError without cuda-python's NVVM bindings, and cuda.pathfinder raises
    DynamicLibNotFoundError when the bindings find no libnvvm to load."""
    from numba.cuda.cudadrv.error import NvvmSupportError

    errors = [NvvmSupportError]
    try:
        from cuda.pathfinder import DynamicLibNotFoundError
    except ImportError:
        pass
    else:
        errors.append(DynamicLibNotFoundError)
    return tuple(errors)


def _trivial(x):
    x[0] = 1.0


@pytest.fixture(scope="session")
def nvvm():
    """Checked once, up front: compile_ptx works here. Skips only when libNVVM itself is
    missing; any other error (and every error in the tests' own compilations) fails."""
    if SIMULATOR or importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("needs numba-cuda (with its toolkit wheels) and not the simulator")
    from numba import cuda

    try:
        cuda.compile_ptx(_trivial, "void(float32[:])", cc=(9, 0))
    except _nvvm_missing_errors() as err:
        pytest.skip(f"numba.cuda.compile_ptx has no libNVVM here: {type(err).__name__}: {err}")


def _kernel_ptx(opt, dtype: str) -> tuple[str, str]:
    """The PTX of ``opt``'s sweep kernel (dimension 2) and step kernel, compiled for cc 9.0."""
    like, sweep_args, step_args = _kernel_arguments(opt, dtype)
    pattern = cuda_backend._pattern(like)
    return (_ptx(cuda_backend._run_objective_kernel(opt.rule, pattern, 2, np.dtype(dtype)), sweep_args),
            _ptx(cuda_backend._step_kernel(opt.rule, pattern), step_args))


@pytest.mark.parametrize("name", list(OPTIMIZERS))  # one test per row, so that test workers share them out
def test_float32_kernels_have_no_float64_instructions(nvvm, hopper, name):
    opt = OPTIMIZERS[name]
    sweep_ptx, step_ptx = _kernel_ptx(opt, "float32")
    for kind, ptx in (("sweep", sweep_ptx), ("step", step_ptx)):
        f64 = [line.strip() for line in ptx.splitlines() if ".f64" in line]
        assert not f64, f"{name} {kind} float32 kernel uses float64: {f64[:3]}"
    assert "ld.local" not in sweep_ptx, f"{name}: sweep state spilled out of registers"
    if name in ("rmsprop-everything", "rmsprop-mxnet-options-norm-clipped", "adam", "sgd"):
        like, sweep_args, _ = _kernel_arguments(opt, "float32")
        wide = cuda_backend._run_quadratic_wide_kernel(opt.rule, cuda_backend._pattern(like), 128,
                                                       np.dtype(np.float32))
        assert ".f64" not in _ptx(wide, (*sweep_args, sweep_args[0])), f"{name} wide float32"


def test_the_norm_of_a_step_compiles_and_keeps_its_dtype(nvvm, hopper):
    """The one-block sum of squares that a step's clip of the gradient's norm launches."""
    for dtype in ("float32", "float64"):
        ptx = _ptx(cuda_backend._squares_kernel(np.dtype(dtype)), (np.zeros(5, dtype), np.zeros(1, dtype)))
        assert (".f64" in ptx) == (dtype == "float64"), dtype


# float64 once per rule, with the most state and coefficients: the check above must be able to fail
# (it sees float64 instructions where there are some), and float64 state (two registers a value) must
# stay in registers too
@pytest.mark.parametrize("name", ["rmsprop-everything", "rmsprop-mxnet-options-norm-clipped",
                                  "momentum-mxnet-options-damped", "adagrad-torch-options-clipped", "preset-adam-torch",
                                  "preset-sgd-torch"])
def test_float64_kernels_are_seen_to_use_float64_and_keep_their_state_in_registers(nvvm, hopper, name):
    sweep_ptx, step_ptx = _kernel_ptx(OPTIMIZERS[name], "float64")
    assert ".f64" in sweep_ptx and ".f64" in step_ptx, "the check must see float64 instructions in float64 kernels"
    assert "ld.local" not in sweep_ptx, f"{name}: float64 sweep state spilled out of registers"


def _train_arguments(opt, dtype, n=4, rows=10):
    """Arguments of a training kernel launch (one block of 4 lanes, ``n`` parameters)."""
    dt = np.dtype(dtype)
    like, sweep, _ = _kernel_arguments(opt, dtype, n)
    w = sweep[0].shape[-1]
    X, y, order = np.zeros((rows, n - 1), dt), np.zeros(rows, dt), np.zeros((2, rows), np.int64)
    args = (*sweep[:5], X, y, order, 4, 8, dt.type(4), dt.type(2), dt.type(1), np.eye(n), np.zeros(n), 0.0,
            np.zeros((1, 3, w)), np.zeros((1, w)), np.zeros((1, w), np.int64), w)
    return like, args


def _f64_instructions(ptx):
    return [line.strip() for line in ptx.splitlines() if ".f64" in line]


def _no_loss(H, pstar, fstar, p, j, n):
    return fstar


def test_training_kernels_compile_and_float32_stays_float32_but_for_the_loss(nvvm, hopper):
    """The training kernel compiles for compute capability 9.0 with its parameters and state in
    registers. Its full-data loss is float64 by design (as on the CPU), so a float32 kernel has
    float64 instructions: the test checks that they are only the loss expansion's (loads, stores,
    conversions, add/sub/mul/fma: no division or square root), and that with the loss replaced
    by a function returning f* every float64 instruction left only moves or widens data: the
    gradient, the divergence check and the update are float32."""
    from numba import cuda as numba_cuda

    from rmsnum.backends._compile import rebind

    arithmetic = ("add.", "sub.", "mul.", "fma.", "div.", "sqrt.", "rcp.", "rsqrt.", "neg.", "abs.", "min.", "max.")
    for name in TRAIN_OPTIMIZERS:
        opt = OPTIMIZERS[name]
        for dtype in ("float32", "float64"):
            like, args = _train_arguments(opt, dtype)
            kernel = cuda_backend._train_kernel(opt.rule, cuda_backend._pattern(like), 4, np.dtype(dtype))
            ptx = _ptx(kernel, args)
            assert "ld.local" not in ptx, f"{name} {dtype}: training state spilled out of registers"
            f64 = _f64_instructions(ptx)
            assert f64, "the check must see float64 instructions (the loss) in every training kernel"
            if dtype == "float64":
                continue
            bad = [line for line in f64 if line.startswith(("div.", "sqrt.", "rcp.", "rsqrt."))]
            assert not bad, f"{name} float32 training kernel divides or takes roots in float64: {bad[:3]}"
            lossless = numba_cuda.jit(rebind(kernel.py_func, _full_loss=numba_cuda.jit(device=True)(_no_loss)))
            left = [line for line in _f64_instructions(_ptx(lossless, args)) if line.startswith(arithmetic)]
            assert not left, f"{name} float32 training kernel computes in float64 outside the loss: {left[:3]}"


# --------------------------------------------------------------------------- users' own kernels


@functools.cache
def _user_kernels():
    """Kernels a user writes with numba.cuda.jit, calling rmsnum.kernels (compiled on first launch).
    ``numba.cuda`` is a module global of the kernels, as in a user's module: the simulator swaps
    such globals for its own ``cuda`` (it cannot see a closure's)."""
    global nbcuda
    from numba import cuda as nbcuda

    from rmsnum import kernels as rk

    @nbcuda.jit
    def chapter(x, g, s, lr, gamma, eps):
        i = nbcuda.grid(1)
        if i < x.size:
            x[i], s[i] = rk.rmsprop_update(x[i], g[i], s[i], lr, gamma, eps)

    @nbcuda.jit
    def general(x, g, s, m, a, r1, r2, c):
        i = nbcuda.grid(1)
        if i < x.size:
            x[i], s[i], m[i], a[i] = rk.rmsprop(x[i], g[i], s[i], m[i], a[i], r1, r2, c)

    @nbcuda.jit
    def amsgrad(x, g, s, m, v_max, r1, r2, c):
        i = nbcuda.grid(1)
        if i < x.size:
            x[i], s[i], m[i], v_max[i] = rk.adam(x[i], g[i], s[i], m[i], v_max[i], r1, r2, c)

    return chapter, general, amsgrad


@cuda
def test_users_kernels_call_the_rules(dtype):
    """rk.rmsprop_update and the general rk.rmsprop (coefficients as numbers) inside a user's
    @cuda.jit kernel agree with the CPU: the chapter's njit loop and opt.step."""
    from rmsnum import kernels as rk

    chapter, general, amsgrad = _user_kernels()
    dt = np.dtype(dtype).type
    rng = np.random.default_rng(3)
    x0, g = rng.standard_normal(21).astype(dtype), rng.standard_normal(21).astype(dtype)
    zeros = np.zeros_like(x0)

    d_x, d_s = _device(x0), _device(zeros)
    chapter[3, 8](d_x, _device(g), d_s, dt(0.4), dt(0.9), dt(1e-6))
    x, s = x0.copy(), zeros.copy()
    for i in range(x.size):
        x[i], s[i] = rk.rmsprop_update(x[i], g[i], s[i], dt(0.4), dt(0.9), dt(1e-6))
    assert_ulps(_host(d_x), x)
    assert_ulps(_host(d_s), s)

    opt = rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)
    ref, state = x0.copy(), opt.init(x0)
    opt.step(ref, g, state)
    slots = [_device(zeros) for _ in range(3)]
    d_x = _device(x0)
    general[3, 8](d_x, _device(g), *slots, dt(1), dt(1), rk.numeric(opt.coefficients(dtype)))
    assert_ulps(_host(d_x), ref)
    for d_slot, name in zip(slots, ("s", "m", "g_avg")):
        assert_ulps(_host(d_slot), getattr(state, name))

    # Adam with AMSGrad and decoupled weight decay (a bias-corrected rule: r1, r2 from its decays).
    opt = rn.AdamW.torch(lr=0.01, amsgrad=True)
    ref, state = x0.copy(), opt.init(x0)
    opt.step(ref, g, state)
    slots = [_device(zeros) for _ in range(3)]
    d_x = _device(x0)
    amsgrad[3, 8](d_x, _device(g), *slots, dt(1) / state.d1, dt(1) / state.d2, rk.numeric(opt.coefficients(dtype)))
    assert_ulps(_host(d_x), ref)
    for d_slot, name in zip(slots, ("s", "m", "v_max")):
        assert_ulps(_host(d_slot), getattr(state, name))


def test_users_float32_kernels_compile_to_float32_ptx(nvvm, hopper):
    """The rules compile inside a user's kernel for a real GPU (PTX for compute capability 9.0),
    and a float32 kernel stays in float32."""
    from rmsnum import kernels as rk

    chapter, general, amsgrad = _user_kernels()
    for dtype in ("float32", "float64"):
        dt = np.dtype(dtype).type
        arr = np.zeros(4, dtype)
        c = rk.numeric(rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True).coefficients(dtype))
        adam_c = rk.numeric(rn.Adam.keras(amsgrad=True, weight_decay=0.01).coefficients(dtype))
        ptxs = [_ptx(chapter, (arr, arr, arr, dt(0.4), dt(0.9), dt(1e-6))),
                _ptx(general, (arr, arr, arr, arr, arr, dt(1), dt(1), c)),
                _ptx(amsgrad, (arr, arr, arr, arr, arr, dt(1), dt(1), adam_c))]
        for ptx in ptxs:
            assert "sqrt" in ptx
            assert (".f64" in ptx) == (dtype == "float64"), dtype


# --------------------------------------------------------------------------- users' objectives


def _booth(x):
    return (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2


def _booth_grad(x, out):
    u, v = x[0] + 2 * x[1] - 7, 2 * x[0] + x[1] - 5
    out[0] = 2 * u + 4 * v
    out[1] = 4 * u + 2 * v


@cuda
def test_user_objectives_run_on_the_gpu_as_on_the_cpu(dtype):
    """Plain functions, CUDA device functions and a classic with array arguments."""
    from numba import cuda as numba_cuda

    from rmsnum import classics

    plain = rn.Objective(_booth, _booth_grad, 2, minimum=(1.0, 3.0))
    device = rn.Objective(numba_cuda.jit(device=True)(_booth), numba_cuda.jit(device=True)(_booth_grad), 2,
                          minimum=(1.0, 3.0))
    opt = rn.RMSProp(lr=0.05, momentum=0.5)
    cpu_run = rn.simulate(opt, plain, (0.0, 0.0), 30, dtype=dtype)
    # With float32 x, Numba computes ``2 * x[1] - 7`` in float64 (int literals), the
    # simulator's Python in float32 (NumPy scalars), and math.exp in float32 where the
    # simulator uses float64, so float32 runs agree to float32 precision there.
    close = assert_close_run if dtype == "float64" or not SIMULATOR else (
        lambda actual, expected, _: np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5))
    for obj in (plain, device):
        gpu = rn.simulate(opt, obj, (0.0, 0.0), 30, dtype=dtype, backend="cuda")
        assert gpu.diverged_at == cpu_run.diverged_at
        close(gpu.x, cpu_run.x, dtype)
        close(gpu.loss, cpu_run.loss, dtype)
    X = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 0.5], [3.0, 2.0], [-1.0, 0.0]], dtype)
    logistic = classics.logistic_regression(X, np.array([0, 1, 0, 1, 1], dtype))
    grid = {"lr": [0.01, 0.1, 0.5], "gamma": [0.9, 0.99]}
    gpu = rn.sweep(rn.RMSProp, logistic, (0.0, 0.0, 0.0), 20, grid=grid, dtype=dtype, backend="cuda",
                   record=5, progress=False)
    ref = rn.sweep(rn.RMSProp, logistic, (0.0, 0.0, 0.0), 20, grid=grid, dtype=dtype, record=5, progress=False)
    close(gpu.final_x, ref.final_x, dtype)  # exp and log1p: float32 in Numba, float64 math in the simulator
    close(gpu.loss, ref.loss, dtype)


def test_objective_kernels_compile_to_ptx(nvvm, hopper):
    """A user objective's kernel compiles for a real GPU, and a float32 classic stays in float32
    (the user's _booth has int literals, which Numba computes in float64: no dtype check for it)."""
    from rmsnum import classics

    opt = rn.RMSProp(lr=0.1)
    user = rn.Objective(_booth, _booth_grad, 2, f_star=0.0)
    for objective in (classics.booth(), classics.rosenbrock(3), user):
        for dtype in ("float32", "float64"):
            like, args, _ = _kernel_arguments(opt, dtype, objective.dim)
            functions, P = cuda_backend.kernel_form(objective, dtype)
            kernel = cuda_backend._run_objective_kernel(opt.rule, cuda_backend._pattern(like), objective.dim,
                                                        np.dtype(dtype), functions)
            ptx = _ptx(kernel, (*args[:5], P, *args[6:]))  # P follows x, S, d, dec, C
            assert "sqrt" in ptx
            if objective is not user:
                assert (".f64" in ptx) == (dtype == "float64"), f"{objective.name} {dtype}"


@pytest.mark.skipif(not SIMULATOR, reason="runs under the CUDA simulator (on a GPU: python examples/cuda_kernel.py)")
def test_the_cuda_example_runs():
    import os
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "cuda_kernel.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
    assert done.returncode == 0, done.stderr
    assert "5 steps on the simulator: max |x_gpu - x_cpu|" in done.stdout, done.stdout


# --------------------------------------------------------------------------- real GPU only


@pytest.mark.gpu
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_arrays_of_other_libraries_are_stepped_in_place(library):
    lib = pytest.importorskip(library)
    host = np.linspace(-1, 1, 1000)
    if library == "torch":
        x, g = lib.tensor(host, device="cuda"), lib.tensor(2 * host, device="cuda")
        pointer = x.data_ptr()
    else:
        x, g = lib.asarray(host), lib.asarray(2 * host)
        pointer = x.data.ptr
    opt = rn.RMSProp(lr=0.01)
    state = opt.init(x)
    opt.step(x, g, state)
    ref, ref_g = host.copy(), 2 * host
    opt.step(ref, ref_g, opt.init(ref))
    result = x.cpu().numpy() if library == "torch" else lib.asnumpy(x)
    assert_ulps(result, ref)
    assert (x.data_ptr() if library == "torch" else x.data.ptr) == pointer
