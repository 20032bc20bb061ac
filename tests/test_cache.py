"""The on-disk kernel cache: warm starts hit it, and editing a rule invalidates it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import rmsnum

SCRIPT = """
import json, numpy as np, rmsnum as rn
from rmsnum.backends import cpu
x = np.array([1.0, 2.0]); opt = rn.SGD(lr=0.5)
opt.step(x, np.array([1.0, 1.0]), opt.init(x))
k = cpu.kernels_for(opt.rule).step_serial
print(json.dumps({"x": x.tolist(), "hits": sum(k.stats.cache_hits.values()),
                  "misses": sum(k.stats.cache_misses.values())}))
"""


def _run(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_editing_a_rule_invalidates_cached_kernels(tmp_path):
    package = Path(rmsnum.__file__).parent
    shutil.copytree(package, tmp_path / "rmsnum", ignore=shutil.ignore_patterns("__pycache__"))

    first = _run(tmp_path)
    assert first == {"x": [0.5, 1.5], "hits": 0, "misses": 1}
    assert _run(tmp_path) == {"x": [0.5, 1.5], "hits": 1, "misses": 0}  # warm: loaded from disk

    rules = tmp_path / "rmsnum" / "rules.py"
    source = rules.read_text()
    edited = source.replace("return x - lr * g\n", "return x - (lr + lr) * g\n")
    assert edited != source
    rules.write_text(edited)
    after_edit = _run(tmp_path)
    assert after_edit["x"] == [0.0, 1.0]  # the edited rule ran, not a stale kernel
    assert after_edit["misses"] == 1


CLASH_SCRIPT = """
import json, sys, numpy as np, rmsnum as rn
out = [0.0]
for d in map(int, sys.argv[1:]):   # one rule, several compile-time dimensions
    data = rn.data.synthetic_regression(n=40, d=d, seed=d)
    problem = rn.LinearRegression(data)
    runs = [rn.train(rn.RMSProp(lr=0.05), problem, 8, 2, record_every=8, backend=b) for b in ("cpu", "reference")]
    out.append(float(np.max(np.abs(runs[0].loss - runs[1].loss))))
    out.append(float(np.max(np.abs(runs[0].w - runs[1].w))))
    A = np.arange(1.0, d + 1)
    res = rn.sweep(rn.RMSProp, rn.Quadratic(A), np.ones(d), 30, {"lr": [0.01] * 64}, progress=False)
    ref = rn.simulate(rn.RMSProp(lr=0.01), rn.Quadratic(A), np.ones(d), 30, backend="reference")
    out.append(float(np.max(np.abs(res.final_x[0] - ref.x[-1]))))
print(json.dumps(out))
"""


def test_cached_kernels_of_different_dimensions_do_not_clash(tmp_path):
    """Kernels loaded from the disk cache call their helpers by symbol name. Two
    kernels compiled in separate processes, then loaded into one, must each link
    their own helpers (same rule, other dimension), not whichever loaded first."""
    package = Path(rmsnum.__file__).parent
    shutil.copytree(package, tmp_path / "rmsnum", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("NUMBA_CACHE_DIR", None)
    for dims in (["3"], ["5"], ["3", "5"], ["5", "3"]):
        out = subprocess.run([sys.executable, "-c", CLASH_SCRIPT, *dims], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert max(json.loads(out.stdout.strip().splitlines()[-1])) < 1e-12, dims
