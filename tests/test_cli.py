"""The rmsnum command."""

import subprocess
import sys

import pytest

from rmsnum import cli

FIGURES = {"weights.png", "rmsprop_2d.png", "rmsprop_rotated.png", "gamma_one.png"}


def test_demo_writes_figures_and_prints_the_chapter(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "epoch 20, x1: -0.010599, x2: 0.000000" in out
    assert "diverged at step" in out
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == FIGURES
    for name in FIGURES:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
