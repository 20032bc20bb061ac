"""The asv benchmark suite cannot rot unnoticed: every module imports and ``asv check`` passes."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.fixture(autouse=True)
def _repository_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name):
    importlib.import_module(f"benchmarks.{name}")


def test_every_suite_is_there():
    suites = {"bench_step", "bench_simulate", "bench_sweep", "bench_regression", "bench_compile", "bench_objectives",
              "common"}
    assert suites <= set(MODULES)


def test_asv_check_passes():
    """asv discovers every benchmark and finds nothing wrong with their signatures and setups."""
    pytest.importorskip("asv")
    done = subprocess.run([sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "No problems found" in output and "failed" not in output, output


def test_datasets_are_fixed():
    """The step vectors are the same on every call (append-only, seeded datasets)."""
    common = importlib.import_module("benchmarks.common")
    a, b = common.step_vectors(1000, "float32"), common.step_vectors(1000, "float32")
    assert all((u == w).all() for u, w in zip(a, b)) and a[0].dtype.name == "float32"
