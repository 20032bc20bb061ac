"""The rmsnum command."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rmsnum import cli

from conftest import AIRFOIL

FIGURES = {"weights.png", "rmsprop_2d.png", "rmsprop_rotated.png", "gamma_one.png", "regression_loss.png"}


@pytest.fixture(autouse=True)
def no_local_data(tmp_path, monkeypatch):
    """The demo must not find (or download) a user's copy of the airfoil data in these tests."""
    monkeypatch.delenv("RMSNUM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_demo_writes_figures_and_prints_the_chapter(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "epoch 20, x1: -0.010599, x2: 0.000000" in out
    assert "diverged at step" in out
    assert "synthetic" in out and "no local copy of the airfoil data" in out
    assert re.search(r"loss: 0\.0\d\d, 0\.\d\d\d sec/epoch", out)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == FIGURES
    for name in FIGURES:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_trains_on_the_airfoil_data(tmp_path, capsys):
    if not AIRFOIL.exists():
        pytest.skip(f"needs the airfoil data at {AIRFOIL}")
    assert cli.main(["demo", "--out", str(tmp_path), "--data", str(AIRFOIL)]) == 0
    out = capsys.readouterr().out
    assert "airfoil self-noise" in out
    assert re.search(r"loss: 0\.2[34]\d, 0\.\d\d\d sec/epoch", out)


def test_demo_with_a_missing_data_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--out", str(tmp_path), "--data", str(tmp_path / "nope.dat")])
    assert exc.value.code == 2
    assert "nope.dat" in capsys.readouterr().err


def test_demo_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.main(["demo"])
    assert {p.name for p in (tmp_path / "rmsnum-demo").iterdir()} == FIGURES


def test_console_entry_point_runs(tmp_path):
    """The same main() through a fresh interpreter, as the console script calls it."""
    result = subprocess.run([sys.executable, "-m", "rmsnum.cli", "demo", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "epoch 20" in result.stdout


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- rmsnum sweep

import argparse  # noqa: E402

import numpy as np  # noqa: E402

import rmsnum as rn  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
STUDY = ["sweep", "--optimizer", "RMSProp", "--x0", "-5,-2", "--steps", "50",
         "--grid", "lr=1e-3:1:4:log", "--grid", "gamma=0.5:0.999:5", "--fixed", "eps=1e-6"]


def _assert_same_result(loaded, direct):
    assert loaded.dims == direct.dims and loaded.shape == direct.shape
    for name in direct.dims:
        assert np.array_equal(loaded.axes[name], direct.axes[name])
    assert np.array_equal(loaded.final_loss, direct.final_loss, equal_nan=True)
    assert np.array_equal(loaded.final_x, direct.final_x, equal_nan=True)
    assert np.array_equal(loaded.diverged_at, direct.diverged_at)
    assert loaded.final_loss.dtype == direct.final_loss.dtype
    assert loaded.optimizer == direct.optimizer and loaded.fixed == direct.fixed and loaded.steps == direct.steps


def test_sweep_writes_the_result_and_its_heatmap(tmp_path, capsys):
    out = tmp_path / "study.npz"
    assert cli.main(STUDY + ["--out", str(out)]) == 0
    assert out.exists() and (tmp_path / "study.png").read_bytes()[:8] == PNG

    loaded = rn.SweepResult.load(out)
    assert loaded.shape == (4, 5) and loaded.dims == ("lr", "gamma")
    direct = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=50,
                      grid={"lr": np.geomspace(1e-3, 1, 4), "gamma": np.linspace(0.5, 0.999, 5)},
                      fixed={"eps": 1e-6}, progress=False)
    _assert_same_result(loaded, direct)

    text = capsys.readouterr().out
    assert "grid 4 x 5 (lr, gamma) = 20 configurations" in text
    assert "lr: 4 values, [0.001, 0.01, 0.1, 1]" in text
    assert "configuration-steps/s" in text
    assert "diverged: 0 of 20" in text
    best = np.unravel_index(np.argmin(direct.final_loss), direct.shape)
    cfg = direct.config(best)
    assert f"best: lr={cfg['lr']:.6g}, gamma={cfg['gamma']:.6g}: final loss {direct.final_loss[best]:.6g}" in text
    assert f"wrote {out}" in text and f"wrote {tmp_path / 'study.png'}" in text


def test_sweep_preset_float32_png_path_checkpoint_and_divergence(tmp_path, capsys):
    argv = ["sweep", "--optimizer", "rmsprop.torch", "--objective", "rotated_quadratic_2d", "--steps", "40",
            "--grid", "lr=1e-2:1e3:4:log", "--grid", "centered=false,true", "--fixed", "alpha=0.9",
            "--dtype", "float32", "--checkpoint", str(tmp_path / "ck"), "--out", str(tmp_path / "r.npz"),
            "--png", str(tmp_path / "figs" / "map.png")]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert (tmp_path / "figs" / "map.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "r.png").exists()
    assert (tmp_path / "ck" / "sweep.json").exists()
    loaded = rn.SweepResult.load(tmp_path / "r.npz")
    assert loaded.optimizer == "RMSProp.torch" and loaded.final_loss.dtype == np.float32
    direct = rn.sweep(rn.RMSProp.torch, rn.rotated_quadratic_2d(), x0=(-5, -2), steps=40,
                      grid={"lr": np.geomspace(1e-2, 1e3, 4), "centered": [False, True]},
                      fixed={"alpha": 0.9}, dtype=np.float32, progress=False)
    _assert_same_result(loaded, direct)
    n = int(direct.diverged.sum())
    assert f"diverged: {n} of 8" in first
    # The same command again resumes from the checkpoint and gives the same result.
    assert cli.main(argv) == 0
    _assert_same_result(rn.SweepResult.load(tmp_path / "r.npz"), direct)


def test_sweep_reports_divergence_and_the_best_finite_configuration(tmp_path, capsys):
    argv = ["sweep", "--optimizer", "SGD", "--steps", "50", "--grid", "lr=1e-2:1e3:6:log",
            "--grid", "seed=0,1", "--out", str(tmp_path / "sgd.npz")]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    res = rn.SweepResult.load(tmp_path / "sgd.npz")
    assert res.diverged.any() and not res.diverged.all()
    assert f"diverged: {int(res.diverged.sum())} of 12" in text
    finite = np.where(res.diverged, np.inf, res.final_loss)
    best = np.unravel_index(np.argmin(finite), res.shape)
    assert f"best: lr={res.config(best)['lr']:.6g}, seed=0:" in text
    assert (tmp_path / "sgd.png").exists()


@pytest.mark.parametrize("axes, expected", [
    (["--grid", "lr=0.1,0.4"], "1 axis"),
    (["--grid", "lr=0.1,0.4", "--grid", "gamma=0.9,0.99", "--grid", "centered=false,true"], "3 axes"),
])
def test_sweep_draws_no_heatmap_unless_the_grid_has_two_axes(tmp_path, capsys, axes, expected):
    out = tmp_path / "r.npz"
    assert cli.main(["sweep", "--steps", "10", *axes, "--out", str(out)]) == 0
    assert f"no heatmap drawn: the grid has {expected}" in capsys.readouterr().out
    assert out.exists() and not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("token, name, values", [
    ("lr=1e-3:1:4:log", "lr", np.geomspace(1e-3, 1, 4)),
    ("lr=1e-3:1:4:LOG", "lr", np.geomspace(1e-3, 1, 4)),
    ("gamma=0.5:0.999:300", "gamma", np.linspace(0.5, 0.999, 300)),
    ("momentum=0:0.9:1", "momentum", np.array([0.0])),
    ("lr=0.1,0.4,4", "lr", [0.1, 0.4, 4]),
    ("eps=1e-8", "eps", [1e-8]),
    ("centered=false,true", "centered", [False, True]),
    ("nesterov= True , FALSE", "nesterov", [True, False]),
    ("seed=0,1,2", "seed", [0, 1, 2]),
])
def test_parse_grid(token, name, values):
    got_name, got = cli.parse_grid(token)
    assert got_name == name
    if isinstance(values, np.ndarray):
        assert isinstance(got, np.ndarray) and np.array_equal(got, values)
        assert got[0] == values[0] and got[-1] == values[-1]  # endpoints exactly as given
    else:
        assert got == values and [type(v) for v in got] == [type(v) for v in values]


def test_parse_fixed_and_optimizer():
    assert cli.parse_fixed("eps=1e-6") == ("eps", 1e-6)
    assert cli.parse_fixed("centered=true") == ("centered", True)
    assert cli.parse_optimizer("RMSProp") is rn.RMSProp
    assert cli.parse_optimizer("sgd") is rn.SGD
    for preset in ("torch", "keras", "tf1", "optax", "mxnet", "d2l", "tf_keras2"):
        assert cli.parse_optimizer(f"RMSProp.{preset}") == getattr(rn.RMSProp, preset)


@pytest.mark.parametrize("token, message", [
    ("lr=1e-3:1", "bad grid entry 'lr=1e-3:1'"),
    ("lr=1:2:x", "bad value 'x' in 'lr=1:2:x'"),
    ("lr=1:2:2.5", "number of values must be an integer >= 1"),
    ("lr=1:2:0", "number of values must be an integer >= 1"),
    ("lr=0:1:5:log", "start and stop > 0"),
    ("lr=1:2:3:lin", "the fourth field may only be 'log'"),
    ("lr=0.1,,0.2", "empty value"),
    ("lr=0.1,true", "mixes booleans and numbers"),
    ("lr=0.1,nan", "finite"),
    ("lr", "bad grid entry 'lr'"),
    ("=0.1", "bad grid entry '=0.1'"),
    ("lr=", "bad grid entry 'lr='"),
])
def test_bad_grid_tokens_are_usage_errors(token, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--grid", token, "--out", str(tmp_path / "r.npz")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --grid" in err and message in err
    with pytest.raises(argparse.ArgumentTypeError, match="bad"):
        cli.parse_grid(token)
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize("extra, message", [
    (["--optimizer", "Foo"], "argument --optimizer: unknown optimizer 'Foo'; allowed: RMSProp"),
    (["--optimizer", "RMSProp.pytorch"], "unknown optimizer 'RMSProp.pytorch'"),
    (["--optimizer", "SGD.keras"], "unknown optimizer 'SGD.keras'"),
    (["--fixed", "eps"], "argument --fixed: bad fixed entry 'eps'"),
    (["--x0", "1,a"], "argument --x0: bad starting point '1,a'"),
    (["--grid", "lr=0.2"], "axis 'lr' given more than once"),
    (["--grid", "foo=1,2"], "grid has unknown hyperparameter 'foo'"),
    (["--fixed", "alpha=0.9"], "fixed has unknown hyperparameter 'alpha'"),
    (["--x0", "1,2,3"], "x0 must have shape (2,)"),
    (["--steps", "0"], "argument --steps: must be between 1 and 9223372036854775807, got 0"),
    (["--steps", str(2**63)], f"argument --steps: must be between 1 and 9223372036854775807, got {2**63}"),
    (["--objective", "rosenbrock"], "argument --objective: invalid choice"),
])
def test_bad_arguments_are_usage_errors(extra, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--steps", "5", "--grid", "lr=0.1,0.4", *extra, "--out", str(tmp_path / "r.npz")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()


def test_sweep_through_the_console_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rmsnum.cli", "sweep", "--optimizer", "Nope", "--grid", "lr=1",
                             "--out", str(tmp_path / "r.npz")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "unknown optimizer 'Nope'" in result.stderr


# --------------------------------------------------------------------------- paths and sizes, before any work


@pytest.fixture
def no_sweep(monkeypatch):
    """Any sweep run fails the test: the errors below must come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("the sweep ran")
    monkeypatch.setattr(rn, "sweep", refuse)


TWO_AXES = ["sweep", "--steps", "5", "--grid", "lr=0.1,0.4", "--grid", "gamma=0.9,0.99"]


@pytest.mark.parametrize("extra, message", [
    (["--out", "{file}/r.npz"], "argument --out: cannot write '{file}/r.npz': {file} is not a directory"),
    (["--out", "{dir}"], "argument --out: cannot write '{dir}': it is a directory"),
    (["--out", "{tmp}/r.npz"], "argument --out: cannot write '{tmp}/r.png': it is a directory"),  # the heatmap
    (["--out", "{tmp}/s.npz", "--png", "{file}/map.png"],
     "argument --png: cannot write '{file}/map.png': {file} is not a directory"),
    (["--out", "{tmp}/s.npz", "--checkpoint", "{file}"],
     "argument --checkpoint: cannot write '{file}': it is an existing file, not a directory"),
    (["--out", "{tmp}/s.npz", "--checkpoint", "{file}/ck"],
     "argument --checkpoint: cannot write '{file}/ck': {file} is not a directory"),
])
def test_paths_that_cannot_be_written_are_usage_errors_before_the_sweep(tmp_path, capsys, no_sweep, extra, message):
    names = {"file": tmp_path / "notes.txt", "dir": tmp_path / "folder", "tmp": tmp_path}
    names["file"].write_text("not a folder")
    names["dir"].mkdir()
    (tmp_path / "r.png").mkdir()
    with pytest.raises(SystemExit) as exc:
        cli.main(TWO_AXES + [arg.format(**names) for arg in extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message.format(**names) in err and "Traceback" not in err


def test_a_folder_without_write_permission_is_a_usage_error(tmp_path, capsys, no_sweep, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    with pytest.raises(SystemExit) as exc:
        cli.main(TWO_AXES + ["--out", str(locked / "new" / "r.npz")])
    assert exc.value.code == 2
    assert f"argument --out: cannot write '{locked / 'new' / 'r.npz'}': permission denied in {locked}" in \
        capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a user whom permissions bind (not root)")
def test_a_read_only_folder_is_a_usage_error(tmp_path, capsys, no_sweep):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(SystemExit) as exc:
        cli.main(TWO_AXES + ["--checkpoint", str(locked / "ck"), "--out", str(tmp_path / "r.npz")])
    assert exc.value.code == 2
    assert "argument --checkpoint: cannot write" in capsys.readouterr().err


def test_a_sweep_too_large_for_memory_is_a_usage_error(tmp_path, capsys):
    """10**12 configurations: the library refuses them (MemoryError) before any work."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--grid", "lr=1e-3:1:1000000:log", "--grid", "gamma=0.5:0.9:1000000",
                  "--out", str(tmp_path / "r.npz")])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "= 1000000000000 configurations" in captured.out
    assert "rmsnum sweep: error: this sweep's results need" in captured.err and "Traceback" not in captured.err
    assert not list(tmp_path.iterdir())


def test_an_axis_too_large_for_memory_is_a_bad_grid_entry(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--grid", "lr=1e-3:1:1000000000000:log", "--out", str(tmp_path / "r.npz")])
    assert exc.value.code == 2
    assert "argument --grid: bad grid entry 'lr=1e-3:1:1000000000000:log': 1000000000000 values do not fit in memory" \
        in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "report"])
def test_an_output_folder_that_is_a_file_is_a_usage_error(tmp_path, capsys, command):
    path = tmp_path / "notes.txt"
    path.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--out", str(path)])
    assert exc.value.code == 2
    assert f"argument --out: cannot write '{path}': it is an existing file, not a directory" in capsys.readouterr().err
