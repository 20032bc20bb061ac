"""sweep(): grids, bit-identity with simulate, outputs, divergence, progress, Dask, bad input (checkpoints: test_checkpoint.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rmsnum as rn
from rmsnum import _config
from rmsnum.sweep import chunk as chunk_module
from rmsnum.sweep import executors, layout

X0 = (-5.0, -2.0)
DENSE = rn.Quadratic([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 3.0]], b=[1.0, -1.0, 0.5])


def _simulate(factory, objective, x0, steps, config, fixed=None, **kwargs):
    hyper = {k: v for k, v in config.items() if k not in ("x0", "seed")}
    x0 = config.get("x0", x0)
    seed = config.get("seed", kwargs.pop("seed", None))
    return rn.simulate(factory(**(fixed or {}), **hyper), objective, x0, steps, seed=seed, **kwargs)


def _assert_matches_simulate(res, factory, objective, x0, steps, fixed=None, samples=12, rng=0, **kwargs):
    """Random configurations of the grid equal simulate() bit for bit."""
    rng = np.random.default_rng(rng)
    for _ in range(samples):
        index = tuple(int(rng.integers(n)) for n in res.shape)
        traj = _simulate(factory, objective, x0, steps, res.config(index), fixed, **kwargs)
        last = traj.steps if traj.diverged_at is None else traj.diverged_at
        np.testing.assert_array_equal(res.final_x[index], traj.x[last], err_msg=str(res.config(index)))
        np.testing.assert_array_equal(res.final_loss[index], traj.loss[last])
        assert res.diverged_at[index] == (-1 if traj.diverged_at is None else traj.diverged_at)
        if res.loss is not None:
            np.testing.assert_array_equal(res.loss[index], traj.loss[res.loss_steps])


def test_the_issue_example_small(dtype):
    lrs, gammas = np.logspace(-3, 0, 13), np.linspace(0.5, 0.999, 11)
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=X0, steps=200, grid={"lr": lrs, "gamma": gammas},
                   fixed={"eps": 1e-6}, record="final", progress=False, dtype=dtype)
    assert res.final_loss.shape == (13, 11) and res.dims == ("lr", "gamma")
    assert res.final_x.shape == (13, 11, 2) and res.final_x.dtype == np.dtype(dtype)
    assert res.diverged_at.dtype == np.int64 and res.loss is None
    np.testing.assert_array_equal(res.axes["lr"], lrs)
    _assert_matches_simulate(res, rn.RMSProp, rn.quadratic_2d(), X0, 200, {"eps": 1e-6}, dtype=dtype)
    assert res.provenance["dtype"] == np.dtype(dtype).name and res.provenance["backend"] == "cpu"


def test_chapter_run_inside_a_sweep():
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 20, grid={"lr": [0.1, 0.4], "gamma": [0.9]}, progress=False)
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), X0, 20)
    assert res.final_x[1, 0, 0] == traj.x[-1, 0] == pytest.approx(-0.01059867213411372, rel=1e-15)


@pytest.mark.parametrize("factory, grid, fixed", [
    (rn.RMSProp, {"centered": [False, True], "momentum": [0.0, 0.5, 0.9], "lr": [0.01, 0.1]}, {"gamma": 0.95}),
    (rn.RMSProp, {"eps_in_sqrt": [True, False], "weight_decay": [0.0, 0.01],
                  "decoupled_weight_decay": [False, True]}, {"lr": 0.05}),
    (rn.RMSProp, {"bias_correction": [False, True], "gamma": [0.5, 0.9, 0.99]},
     {"lr": 0.05, "momentum": 0.9, "nesterov": True, "lr_in_momentum": True}),
    (rn.RMSProp.torch, {"lr": [1e-3, 1e-2], "alpha": [0.9, 0.99], "momentum": [0.0, 0.9]}, {"centered": True}),
    (rn.RMSProp.mxnet, {"learning_rate": [0.01, 0.1], "centered": [False, True]}, {"wd": 0.001}),
    (rn.Adam, {"lr": [0.01, 0.1], "beta1": [0.0, 0.9]}, None),
    (rn.SGD, {"lr": [0.01, 0.1, 0.6]}, None),
    (rn.Momentum, {"lr": [0.01, 0.1], "beta": [0.0, 0.5]}, None),
    (rn.Adagrad, {"lr": [0.1, 1.0], "eps": [1e-6, 1e-3]}, None),
])
def test_every_variant_equals_simulate(factory, grid, fixed):
    res = rn.sweep(factory, DENSE, (1.0, 2.0, -1.0), 60, grid, fixed, record=7, progress=False)
    _assert_matches_simulate(res, factory, DENSE, (1.0, 2.0, -1.0), 60, fixed, samples=16)


def test_all_configurations_equal_simulate_float32_with_recorded_loss():
    grid = {"lr": [0.05, 0.4, 2.0], "gamma": [0.0, 0.9, 1.0]}
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 50, grid, record="loss", dtype=np.float32, progress=False)
    assert res.loss.shape == (3, 3, 51) and res.loss.dtype == np.float32
    np.testing.assert_array_equal(res.loss_steps, np.arange(51))
    for i in range(3):
        for j in range(3):
            traj = rn.simulate(rn.RMSProp(**res.config((i, j))), rn.quadratic_2d(), X0, 50, dtype=np.float32)
            np.testing.assert_array_equal(res.loss[i, j], traj.loss)


def test_x0_and_seed_axes_with_noise():
    noisy = rn.quadratic_2d(noise=0.3)
    starts = np.array([[-5.0, -2.0], [1.0, 1.0], [3.0, -0.5]])
    res = rn.sweep(rn.RMSProp, noisy, None, 40, grid={"x0": starts, "lr": [0.1, 0.4], "seed": [0, 1, 7]},
                   record=10, progress=False)
    assert res.shape == (3, 2, 3) and res.dims == ("x0", "lr", "seed")
    _assert_matches_simulate(res, rn.RMSProp, noisy, None, 40, samples=10)
    assert not np.array_equal(res.final_x[0, 0, 0], res.final_x[0, 0, 1])  # seeds differ
    single = rn.sweep(rn.RMSProp, noisy, X0, 40, grid={"lr": [0.1]}, seed=7, progress=False)
    np.testing.assert_array_equal(single.final_x[0], res.final_x[0, 0, 2])


def test_same_call_is_bit_identical():
    args = (rn.RMSProp, rn.quadratic_2d(noise=0.1), X0, 30, {"lr": [0.1, 0.2], "gamma": [0.8, 0.9]})
    a = rn.sweep(*args, seed=3, progress=False)
    b = rn.sweep(*args, seed=3, progress=False)
    np.testing.assert_array_equal(a.final_x, b.final_x)


@settings(max_examples=15)
@given(lr=st.lists(st.floats(1e-4, 3.0), min_size=1, max_size=70),
       gamma=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3), chunk=st.integers(1, 200))
def test_property_chunking_and_blocking_never_change_results(lr, gamma, chunk):
    grid = {"lr": lr, "gamma": gamma}
    whole = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 25, grid, progress=False)
    chunked = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 25, grid, chunk_size=chunk, progress=False)
    np.testing.assert_array_equal(whole.final_x, chunked.final_x)
    np.testing.assert_array_equal(whole.diverged_at, chunked.diverged_at)
    _assert_matches_simulate(whole, rn.RMSProp, rn.quadratic_2d(), X0, 25, samples=3)


def test_divergence_is_data_and_does_not_disturb_neighbours():
    lrs = [0.1, 1e3, 0.2, 5e2] * 20  # diverging and converging configurations share blocks
    res = rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 300, {"lr": lrs}, record=50, tol=[1e-3], progress=False)
    bad = res.diverged
    assert bad.tolist() == [lr > 1 for lr in lrs]
    assert np.all(res.diverged_at[bad] > 0) and np.all(~np.isfinite(res.final_loss[bad]))
    assert np.all(np.isfinite(res.final_x[~bad]))
    alone = rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 300, {"lr": [0.1, 0.2]}, record=50, progress=False)
    np.testing.assert_array_equal(res.final_x[0], alone.final_x[0])
    np.testing.assert_array_equal(res.loss[2], alone.loss[1])
    assert np.all(np.isnan(res.loss[1][res.loss_steps > res.diverged_at[1]]))
    assert np.all(res.steps_to_tol[bad] == -1)


def test_steps_to_tolerance():
    tols = [1e-1, 1e-4, 1e-30]
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 100, {"lr": [0.05, 0.4]}, tol=tols, progress=False)
    assert res.steps_to_tol.shape == (2, 3)
    np.testing.assert_array_equal(res.tol, tols)
    for i, lr in enumerate([0.05, 0.4]):
        gap = rn.simulate(rn.RMSProp(lr=lr), rn.quadratic_2d(), X0, 100).gap
        for k, tol in enumerate(tols):
            below = np.flatnonzero(gap < tol)
            assert res.steps_to_tol[i, k] == (below[0] if below.size else -1)


def test_save_load_round_trip_exactly(tmp_path):
    res = rn.sweep(rn.RMSProp.torch, DENSE, None, 30,
                   grid={"x0": [[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]], "alpha": [0.9, 0.99], "centered": [False, True]},
                   fixed={"lr": 0.01}, record=5, tol=1e-2, progress=False)
    path = tmp_path / "study.npz"
    res.save(path)
    back = rn.SweepResult.load(path)
    for name in ("final_x", "final_loss", "diverged_at", "loss", "loss_steps", "tol", "steps_to_tol"):
        a, b = getattr(res, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    assert back.dims == res.dims and all(np.array_equal(back.axes[k], res.axes[k]) for k in res.axes)
    assert back.axes["centered"].dtype == bool
    assert (back.optimizer, back.fixed, back.steps, back.provenance) == ("RMSProp.torch", {"lr": 0.01}, 30,
                                                                         res.provenance)
    np.testing.assert_array_equal(back.objective.A, DENSE.A)
    assert back.config((1, 0, 1)) == {"x0": [0.0, 1.0, 2.0], "alpha": 0.9, "centered": True}


def test_load_refuses_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", meta=np.array('{"format": "x"}'))
    with pytest.raises(ValueError, match="not a saved rmsnum SweepResult"):
        rn.SweepResult.load(tmp_path / "other.npz")


def test_to_xarray():
    xr = pytest.importorskip("xarray")
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 20, {"lr": [0.1, 0.4], "gamma": [0.8, 0.9, 0.99]},
                   record=10, tol=[1e-2], progress=False)
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["final_loss"].dims == ("lr", "gamma") and ds["loss"].dims == ("lr", "gamma", "step")
    assert float(ds["final_loss"].sel(lr=0.4, gamma=0.9)) == res.final_loss[1, 1]
    np.testing.assert_array_equal(ds["step"], [0, 10, 20])


# --------------------------------------------------------------------------- memory, progress


def test_results_that_do_not_fit_raise_before_running(monkeypatch):
    monkeypatch.setattr(executors, "available_memory", lambda: 10 * 2**20)
    monkeypatch.setattr(executors, "start_chunk", lambda *a, **k: pytest.fail("must not run"))
    with pytest.raises(MemoryError, match="record="):
        rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 10_000, {"lr": np.linspace(0.01, 0.1, 1000)}, record="loss",
                 progress=False)


def test_progress_is_quiet_without_a_terminal(capsys):
    rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 5, {"lr": [0.1, 0.2]}, chunk_size=1, progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_on_a_terminal(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    fake = Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 5, {"lr": [0.1, 0.2, 0.3]}, chunk_size=1, progress=True)
    assert "3/3" in fake.getvalue()


class _Terminal:
    """A stderr that says it is a terminal and keeps what tqdm writes."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def isatty(self):
        return True

    def write(self, text):
        return self.buffer.write(text)

    def flush(self):
        pass


def _counts(text):
    """The configurations done at each redraw of the bar."""
    import re

    return [int(n) for n in re.findall(r"\| (\d+)/\d+ \[", text)]


@pytest.mark.parametrize("which", ["sweep", "train_sweep"])
def test_progress_moves_within_a_one_chunk_sweep_and_changes_nothing(monkeypatch, which):
    """A one-chunk sweep runs in slices of blocks (here as small as they get: SLICE_SECONDS 0), so the
    bar moves, with an ETA, many times before the chunk ends; slicing changes no number."""
    if which == "sweep":
        run = lambda progress: rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 200,  # noqa: E731
                                        {"lr": np.logspace(-3, 0, 40), "gamma": np.linspace(0.5, 0.99, 30)},
                                        record=50, tol=[1e-3], progress=progress)
    else:
        data = rn.data.synthetic_regression(n=100, d=3, noise=0.1, seed=0)
        run = lambda progress: rn.train_sweep(rn.RMSProp, rn.LinearRegression(data), 10, 2,  # noqa: E731
                                              {"lr": np.logspace(-3, -1, 300)}, record_every=50,
                                              progress=progress)
    quiet = run(False)
    fake = _Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(chunk_module, "SLICE_SECONDS", 0.0)
    real_bar = executors._progress_bar

    def redraw_every_update(*args):
        bar = real_bar(*args)
        bar.mininterval, bar.miniters, bar.dynamic_miniters = 0, 1, False  # tqdm redraws at most 10/s
        return bar
    monkeypatch.setattr(executors, "_progress_bar", redraw_every_update)
    shown = run(True)
    assert shown.provenance["chunk_size"] >= quiet.final_loss.size  # one chunk
    counts = _counts(fake.buffer.getvalue())
    assert len(set(counts)) >= 4 and counts[-1] == quiet.final_loss.size, counts
    assert "<" in fake.buffer.getvalue()  # elapsed<remaining: an ETA
    for name in ("final_x", "final_loss", "diverged_at", "loss", "steps_to_tol"):
        np.testing.assert_array_equal(getattr(quiet, name), getattr(shown, name), err_msg=name)


# --------------------------------------------------------------------------- Dask


def test_dask_local_cluster_equals_cpu():
    distributed = pytest.importorskip("dask.distributed")
    grid = {"lr": np.logspace(-3, 0, 9), "gamma": [0.5, 0.9, 0.99], "centered": [False, True]}
    cpu = rn.sweep(rn.RMSProp, rn.quadratic_2d(noise=0.05), X0, 100, grid, record=20, chunk_size=10, seed=4,
                   progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = rn.sweep(rn.RMSProp, rn.quadratic_2d(noise=0.05), X0, 100, grid, record=20, chunk_size=10,
                          seed=4, progress=False, backend=client)
        workers = client.run(os.getpid)
    assert len(set(workers.values())) == 2
    for name in ("final_x", "final_loss", "diverged_at", "loss"):
        np.testing.assert_array_equal(getattr(cpu, name), getattr(remote, name))
    assert remote.provenance["backend"] == "dask"


def test_dask_backend_string_starts_a_local_cluster():
    pytest.importorskip("dask.distributed")
    grid = {"lr": [0.1, 0.2, 0.3]}
    cpu = rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 10, grid, chunk_size=1, progress=False)
    remote = rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 10, grid, chunk_size=1, progress=False, backend="dask")
    np.testing.assert_array_equal(cpu.final_x, remote.final_x)


# --------------------------------------------------------------------------- bad input

GOOD = dict(optimizer=rn.RMSProp, objective=rn.quadratic_2d(), x0=X0, steps=10, grid={"lr": [0.1, 0.2]})
BAD = [
    (dict(grid={"lr": []}), ValueError, r"grid\['lr'\] is empty"),
    (dict(grid={"lr": [0.1, np.nan]}), ValueError, r"grid\['lr'\]\[1\] must be finite"),
    (dict(grid={"lr": [0.1, np.inf]}), ValueError, r"grid\['lr'\]\[1\] must be finite"),
    (dict(grid={"lr": [0.1, 1e-50]}, dtype=np.float32), ValueError, r"grid\['lr'\]\[1\]=1e-50 rounds to 0 in float32"),
    (dict(grid={"lr": [1e50, 0.1]}, dtype=np.float32), ValueError, r"grid\['lr'\]\[0\]=1e\+50 overflows float32"),
    (dict(fixed={"eps": 1e-50}, dtype=np.float32), ValueError, r"fixed\['eps'\]=1e-50 rounds to 0 in float32"),
    (dict(steps=2**70), ValueError, r"steps must be at most 4611686018427387904"),
    (dict(grid={"lr": [0.1, "0.2"]}), TypeError, r"grid\['lr'\]\[1\] must be a real number"),
    (dict(grid={"learning_rate": [0.1]}), ValueError, "unknown hyperparameter 'learning_rate'"),
    (dict(grid={"lr": [0.1, -0.2]}), ValueError, r"grid\['lr'\]\[1\] = -0.2: lr must be in"),
    (dict(grid={"lr": [0.1], "gamma": [0.5, 0.9, 1.5]}), ValueError, r"grid\['gamma'\]\[2\] = 1.5"),
    (dict(grid={"lr": [0.1], "centered": [True, 1]}), TypeError, r"grid\['centered'\]\[1\]"),
    (dict(grid={"lr": ["0.1"]}), TypeError, r"grid\['lr'\]\[0\] must be a real number"),
    (dict(grid={}), TypeError, "grid must be a non-empty dict"),
    (dict(grid=[0.1]), TypeError, "grid must be a non-empty dict"),
    (dict(grid={"lr": 0.1}), TypeError, r"grid\['lr'\] must be a sequence"),
    (dict(fixed={"lr": 0.1}), ValueError, "'lr' is both in grid and in fixed"),
    (dict(fixed={"rho": 0.9}), ValueError, "fixed has unknown hyperparameter 'rho'"),
    (dict(optimizer=rn.Optimizer), TypeError, "optimizer must be an optimizer class"),
    (dict(optimizer="RMSProp"), TypeError, "optimizer must be an optimizer class"),
    (dict(objective="quadratic"), TypeError, "objective must be a Quadratic"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(x0=(1.0, 2.0, 3.0)), ValueError, "x0 must have shape"),
    (dict(grid={"lr": [0.1], "x0": [[1.0, 2.0]]}), ValueError, "x0=None"),
    (dict(x0=None, grid={"lr": [0.1], "x0": [[1.0, np.nan]]}), ValueError, r"grid\['x0'\]\[0\] is not finite"),
    (dict(x0=None, grid={"x0": [1.0, 2.0]}), ValueError, r"grid\['x0'\] must be a non-empty batch"),
    (dict(grid={"lr": [0.1], "seed": [1, -1]}), ValueError, r"grid\['seed'\]\[1\]"),
    (dict(record="every"), TypeError, "record must be"),
    (dict(record=0), ValueError, "record must be a positive int"),
    (dict(tol=[1e-3, -1.0]), ValueError, "tol values must be finite and > 0"),
    (dict(tol="small"), TypeError, "tol must be"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
    (dict(backend=3), TypeError, "backend must be one of"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(progress="yes"), TypeError, "progress"),
]


@pytest.mark.parametrize("change, error, match", BAD)
def test_bad_input_raises_before_any_work(change, error, match, monkeypatch, tmp_path):
    monkeypatch.setattr(executors, "start_chunk", lambda *a, **k: pytest.fail("must not run"))
    with pytest.raises(error, match=match):
        rn.sweep(**{**GOOD, **change}, checkpoint=tmp_path / "ckpt", progress=False)
    assert not (tmp_path / "ckpt").exists()


def test_fractions_are_real_numbers_in_grids_as_in_constructors():
    from fractions import Fraction

    exact = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 10, {"lr": [Fraction(1, 10), Fraction(2, 5)]},
                     {"gamma": Fraction(9, 10)}, progress=False)
    floats = rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 10, {"lr": [0.1, 0.4]}, {"gamma": 0.9}, progress=False)
    np.testing.assert_array_equal(exact.final_x, floats.final_x)
    rn.RMSProp(lr=Fraction(1, 10), gamma=Fraction(9, 10))


def test_nesterov_without_momentum_in_the_grid_is_named():
    with pytest.raises(ValueError, match="nesterov"):
        rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 10, {"momentum": [0.0, 0.9]}, {"lr": 0.1, "nesterov": True},
                 progress=False)


def test_preset_names_are_the_frameworks():
    res = rn.sweep(rn.RMSProp.keras, rn.quadratic_2d(), X0, 10, {"learning_rate": [0.01], "rho": [0.9, 0.95]},
                   progress=False)
    assert res.optimizer == "RMSProp.keras" and res.dims == ("learning_rate", "rho")


def test_an_instance_whose_fields_the_grid_overrides():
    """An instance equals its class with its fields as fixed, bit for bit; fixed= wins over its
    fields; presets and AdamW (whose constructor has no decoupled_weight_decay) work too."""
    import dataclasses

    q = DENSE
    opt = rn.RMSProp.torch(lr=0.01, alpha=0.9, momentum=0.5, centered=True)
    res = rn.sweep(opt, q, (1.0, -1.0, 0.5), 30, {"lr": [0.01, 0.05], "gamma": [0.9, 0.99]}, fixed={"eps": 1e-6},
                   record="loss", progress=False)
    assert res.optimizer == "RMSProp" and res.dims == ("lr", "gamma")
    assert res.fixed["eps"] == 1e-6 and res.fixed["momentum"] == 0.5 and res.fixed["eps_in_sqrt"] is False
    for i, lr in enumerate([0.01, 0.05]):
        for j, gamma in enumerate([0.9, 0.99]):
            one = rn.simulate(dataclasses.replace(opt, lr=lr, gamma=gamma, eps=1e-6), q, (1.0, -1.0, 0.5), 30)
            np.testing.assert_array_equal(res.loss[i, j], one.loss)
            np.testing.assert_array_equal(res.final_x[i, j], one.final_x)
    adamw = rn.AdamW.torch(lr=0.05, amsgrad=True)
    res = rn.sweep(adamw, q, (1.0, -1.0, 0.5), 30, {"weight_decay": [0.0, 0.1]}, progress=False)
    one = rn.simulate(rn.AdamW.torch(lr=0.05, amsgrad=True, weight_decay=0.1), q, (1.0, -1.0, 0.5), 30)
    np.testing.assert_array_equal(res.final_x[1], one.final_x)
    with pytest.raises(ValueError, match="grid has unknown hyperparameter 'alpha'"):  # field names, not preset names
        rn.sweep(opt, q, (1.0, -1.0, 0.5), 3, {"alpha": [0.9]}, progress=False)
    with pytest.raises(ValueError, match="'lr' is both in grid and in fixed"):
        rn.sweep(opt, q, (1.0, -1.0, 0.5), 3, {"lr": [0.1]}, fixed={"lr": 0.2}, progress=False)
    odd = dataclasses.replace(adamw)
    object.__setattr__(odd, "decoupled_weight_decay", False)  # an AdamW its constructor cannot make
    with pytest.raises(ValueError, match="cannot be rebuilt from the arguments of AdamW"):
        rn.sweep(odd, q, (1.0, -1.0, 0.5), 3, {"lr": [0.1]}, progress=False)


def test_tf_keras2_preset_switches_eps_with_momentum_in_a_sweep():
    """tf.keras 2's RMSprop puts eps outside the sqrt without momentum and inside with it: a
    momentum axis of the preset crosses both paths, in blocks of 64 lanes (20 learning rates) and of
    one lane (small groups), and every configuration equals simulate bit for bit."""
    x0 = (1.0, -1.0, 0.5)
    res = rn.sweep(rn.RMSProp.tf_keras2, DENSE, x0, 40, {"learning_rate": np.linspace(0.01, 0.1, 20),
                                                         "momentum": [0.0, 0.9]}, progress=False)
    small = rn.sweep(rn.RMSProp.tf_keras2, DENSE, x0, 40, {"momentum": [0.0, 0.5], "centered": [False, True]},
                     progress=False)
    for result in (res, small):
        for index in np.ndindex(result.shape):
            one = rn.simulate(rn.RMSProp.tf_keras2(**result.config(index)), DENSE, x0, 40)
            np.testing.assert_array_equal(result.final_x[index], one.final_x, err_msg=str(result.config(index)))
    assert not np.array_equal(small.final_x[0, 0], small.final_x[1, 0])


# The framework options of issue 19 as grid axes: each crosses the option on and off, and every
# configuration equals simulate. The first case runs blocks of 64 lanes (20 learning rates x the clip of
# the gradient's norm on and off, with its scale, its clip and the weights' clip: lanes with and without
# the norm's clip share a kernel, an unclipped lane's limit being +inf); the others are small groups,
# whose one-lane blocks are simulate's own kernel. (SGD.torch's maximize: the cases of RMSProp.torch and
# Adam.torch, and SGD.mxnet's scale, take the gradient's sign and scale through the same coefficient.)
FRAMEWORK_OPTION_AXES = [
    (rn.RMSProp, {"lr": np.linspace(0.01, 0.1, 20), "clip_norm": [0.0, 0.5]},
     {"weight_decay": 0.1, "rescale_grad": 0.5, "clip_gradient": 0.05, "clip_weights": 0.9}),
    (rn.RMSProp.torch, {"maximize": [False, True], "momentum": [0.0, 0.5]}, {"lr": 0.01}),
    (rn.Adam.torch, {"maximize": [False, True], "weight_decay": [0.0, 0.1]}, {"lr": 0.01}),
    (rn.SGD.torch, {"momentum": [0.0, 0.9], "dampening": [0.0, 0.5]}, {"lr": 0.01, "weight_decay": 0.1}),
    (rn.SGD.torch, {"momentum": [0.5, 0.9], "nesterov": [False, True]}, {"lr": 0.01}),
    (rn.Adagrad.torch, {"lr_decay": [0.0, 0.05], "initial_accumulator_value": [0.0, 0.5]}, {"lr": 0.3}),
    (rn.Adagrad.keras, {"epsilon": [1e-7, 1e-3], "weight_decay": [0.0, 0.1]}, {"learning_rate": 0.3}),
    (rn.RMSProp.tf1, {"epsilon": [0.0, 1e-10], "centered": [False, True]}, {"learning_rate": 0.05}),
    (rn.RMSProp.mxnet, {"clip_gradient": [0.0, 0.05], "clip_weights": [0.0, 0.9]}, {"learning_rate": 0.05, "wd": 0.1}),
    (rn.Adam.keras, {"clipvalue": [0.0, 0.05], "amsgrad": [False, True]}, {"learning_rate": 0.05}),
    (rn.RMSProp.keras, {"clipnorm": [0.0, 0.5], "momentum": [0.0, 0.5]}, {"learning_rate": 0.05}),
    (rn.SGD.mxnet, {"rescale_grad": [0.5, 2.0], "clip_gradient": [0.0, 0.05]}, {"momentum": 0.9, "learning_rate": 0.05}),
    (rn.Adam.mxnet, {"rescale_grad": [0.5, 2.0], "clip_gradient": [0.0, 0.05]}, {"learning_rate": 0.05, "wd": 0.1}),
]


@pytest.mark.parametrize("preset, grid, fixed", FRAMEWORK_OPTION_AXES,
                         ids=[f"{p.__qualname__}-{'-'.join(g)}" for p, g, _ in FRAMEWORK_OPTION_AXES])
def test_framework_options_as_grid_axes_equal_simulate(preset, grid, fixed):
    x0 = (1.0, -1.0, 0.5)
    res = rn.sweep(preset, DENSE, x0, 40, grid, fixed=fixed, progress=False)
    for index in np.ndindex(res.shape):
        one = rn.simulate(preset(**fixed, **res.config(index)), DENSE, x0, 40)
        np.testing.assert_array_equal(res.final_x[index], one.final_x, err_msg=str(res.config(index)))
    for axis, name in enumerate(grid):  # every axis changes the run
        assert not np.array_equal(np.take(res.final_x, 0, axis=axis), np.take(res.final_x, 1, axis=axis)), name


def test_doc_example_runs_in_a_fresh_process():
    code = textwrap.dedent("""
        import numpy as np, rmsnum as rn
        res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=100,
                       grid={"lr": np.logspace(-3, 0, 30), "gamma": np.linspace(0.5, 0.999, 30)},
                       fixed={"eps": 1e-6}, record="final")
        print(res.final_loss.shape, int((res.diverged_at >= 0).sum()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("(30, 30)") and out.stderr == ""


def test_float32_sweep_kernel_does_no_float64_arithmetic():
    import re

    from rmsnum.backends import cpu

    opt = rn.RMSProp(lr=0.1, centered=True, momentum=0.5, bias_correction=True)
    dt = np.dtype(np.float32)
    C, like = cpu.coefficient_table([opt.coefficients(dt)] * 4, dt)
    kernel = cpu._instantiate(cpu._run_objective_template, opt.rule, cache=False, lanes=4)
    x = np.ones((1, 2, 4), dt)
    state = tuple(np.zeros_like(x) for _ in range(3))
    kernel(x, state, np.zeros((1, 2, 4), dt), np.full((1, 4, 4), 0.5, dt), C.reshape(1, 1, -1, 4), like,
           (np.array([0.2, 4.0], dt), np.zeros(2, dt)), dt.type(1), dt.type(0.5), dt.type(0), None, dt.type(0),
           np.array([1e-3], dt), 5, 1, np.empty((1, 6, 4), dt), np.empty((1, 0, 2, 4), dt), np.empty((1, 4), dt),
           np.empty((1, 4), np.int64), np.full((1, 1, 4), -1, np.int64))
    ir = "\n".join(kernel.inspect_llvm().values())
    assert re.findall(r"= f(?:add|sub|mul|div) float ", ir), "no float32 arithmetic found: test is broken"
    assert not re.findall(r"= f(?:add|sub|mul|div)(?: \w+)* double |fpext|llvm\.sqrt\.f64", ir)


def test_default_chunk_keeps_recorded_curves_bounded():
    f64 = np.dtype(np.float64)
    assert layout.default_chunk_size(2, f64, 1000, None, None) == _config.MAX_CHUNK_SIZE
    size = layout.default_chunk_size(2, f64, 100_000, 1, None)
    assert size % 64 == 0 and size * 100_001 * 8 <= _config.CHUNK_BYTES
    assert layout.default_chunk_size(2, f64, 10**9, 1, None) == 64
