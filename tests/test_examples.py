"""The scripts in examples/ run and print what they promise (the CUDA one runs in tests/test_cuda.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script, expected", [
    ("njit_kernel.py", "chapter: epoch 20, x1: -0.010599, x2: 0.000000"),
    ("user_objective.py", "simulate: x = [1.0004 0.9992], f - f* = 2.25e-04"),
])
def test_example_runs(script, expected):
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout, done.stdout
