"""rmsnum._config: the defaults, the flags read from the environment once at import, and bad values."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cache import SCRIPT as STEP  # one SGD step; its kernel's cache hits, misses

import rmsnum
from rmsnum import _config

FLAGS = ("RMSNUM_NO_CACHE", "RMSNUM_FASTMATH")
ROOT = Path(rmsnum.__file__).resolve().parent.parent

REPORT = """
import json, numpy as np, rmsnum as rn
from rmsnum import _config
from rmsnum.backends import cpu
k = cpu.kernels_for(rn.SGD(lr=0.5).rule).step_serial   # not compiled: its options only
print(json.dumps({"CACHE": _config.CACHE, "FASTMATH": _config.FASTMATH,
                  "fastmath": sorted(k.targetoptions["fastmath"]) if k.targetoptions["fastmath"] else False,
                  "cache": type(k._cache).__name__}))
"""



def _python(script: str, root: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter that imports rmsnum from ``root``, with only ``env`` of the flags set."""
    environ = {k: v for k, v in os.environ.items() if k not in FLAGS and k != "NUMBA_CACHE_DIR"}
    environ.update(env, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", script], env=environ, cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)


def _json(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults():
    assert _json(_python(REPORT)) == {"CACHE": True, "FASTMATH": False, "fastmath": False, "cache": "FunctionCache"}
    assert (_config.LANES, _config.PARALLEL_THRESHOLD, _config.MAX_UNROLLED_DIM) == (64, 1 << 16, 8)
    assert (_config.THREADS_PER_BLOCK, _config.STEP_BLOCKS, _config.WIDE_DIM) == (128, 8192, 16)
    assert (_config.MAX_STEPS, _config.MAX_CHUNK_SIZE, _config.MAX_CUDA_CHUNK_SIZE) == (2**62, 1 << 18, 1 << 21)
    assert (_config.CHUNK_BYTES, _config.MEMORY_FRACTION, _config.SLICE_SECONDS) == (256 << 20, 0.8, 0.5)
    assert _config.NO_WORKERS_TIMEOUT == "60s" and _config.DOWNLOAD_TIMEOUT == 30.0
    assert "nnan" not in _config.FASTMATH_FLAGS and "ninf" not in _config.FASTMATH_FLAGS  # divergence stays visible


def test_the_modules_use_the_same_constants():
    from rmsnum import dask_executor, data
    from rmsnum.backends import cpu
    from rmsnum.sweep import chunk

    assert (cpu.LANES, cpu.PARALLEL_THRESHOLD, cpu.MAX_UNROLLED_DIM) == (_config.LANES, _config.PARALLEL_THRESHOLD,
                                                                         _config.MAX_UNROLLED_DIM)
    assert chunk.SLICE_SECONDS == _config.SLICE_SECONDS
    assert dask_executor.NO_WORKERS_TIMEOUT == _config.NO_WORKERS_TIMEOUT
    assert data.DOWNLOAD_TIMEOUT == _config.DOWNLOAD_TIMEOUT


def test_config_imports_nothing_from_rmsnum():
    tree = ast.parse((ROOT / "rmsnum" / "_config.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("rmsnum"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(alias.name.startswith("rmsnum") for alias in node.names), ast.dump(node)


def test_no_cache_turns_the_disk_cache_off():
    assert _json(_python(REPORT, RMSNUM_NO_CACHE="1")) == {"CACHE": False, "FASTMATH": False, "fastmath": False,
                                                           "cache": "NullCache"}


def test_fastmath_compiles_with_the_flags():
    assert _json(_python(REPORT, RMSNUM_FASTMATH="1")) == {"CACHE": True, "FASTMATH": True,
                                                           "fastmath": sorted(_config.FASTMATH_FLAGS),
                                                           "cache": "FunctionCache"}


def test_the_flags_act_on_the_disk_cache(tmp_path):
    """RMSNUM_NO_CACHE=1 neither loads nor writes cached kernels; a kernel cached without fastmath is not
    loaded under RMSNUM_FASTMATH=1 (Numba's own index key does not see the flag)."""
    shutil.copytree(ROOT / "rmsnum", tmp_path / "rmsnum", ignore=shutil.ignore_patterns("__pycache__"))
    cached = tmp_path / "rmsnum" / "backends" / "__pycache__"
    assert _json(_python(STEP, tmp_path, RMSNUM_NO_CACHE="1")) == {"x": [0.5, 1.5], "hits": 0, "misses": 1}
    assert not list(cached.glob("*.nbi"))  # nothing written
    assert _json(_python(STEP, tmp_path)) == {"x": [0.5, 1.5], "hits": 0, "misses": 1}
    assert list(cached.glob("*.nbi"))
    assert _json(_python(STEP, tmp_path, RMSNUM_NO_CACHE="1"))["hits"] == 0  # warm, but not loaded
    assert _json(_python(STEP, tmp_path, RMSNUM_FASTMATH="1")) == {"x": [0.5, 1.5], "hits": 0, "misses": 1}


def test_fastmath_still_reports_divergence():
    """The fast-math flags leave NaN and inf semantics alone, so a run that overflows is still seen to diverge."""
    script = ("import rmsnum as rn; t = rn.simulate(rn.SGD(lr=20.0), rn.quadratic_2d(), (-5, -2), 500); "
              "print(t.diverged_at)")
    plain = _python(script, RMSNUM_NO_CACHE="1")
    fast = _python(script, RMSNUM_NO_CACHE="1", RMSNUM_FASTMATH="1")
    assert plain.returncode == 0 and fast.returncode == 0, plain.stderr + fast.stderr
    assert fast.stdout.split() == plain.stdout.split() == ["81"]


@pytest.mark.parametrize("name", FLAGS)
def test_a_bad_value_is_a_clear_error_at_import(name):
    out = _python("import rmsnum", **{name: "maybe"})
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError:") and f"{name}='maybe'" in last, out.stderr
    assert "allowed: 1, true, yes, on (on) or 0, false, no, off (off)" in last


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("TRUE", True), (" yes ", True), ("On", True), ("0", False),
                                            ("false", False), ("No", False), ("off", False), ("", False)])
def test_flag_spellings(monkeypatch, raw, value):
    monkeypatch.setenv("RMSNUM_TEST_FLAG", raw)
    assert _config._flag("RMSNUM_TEST_FLAG") is value


def test_an_unset_flag_is_off(monkeypatch):
    monkeypatch.delenv("RMSNUM_TEST_FLAG", raising=False)
    assert _config._flag("RMSNUM_TEST_FLAG") is False
