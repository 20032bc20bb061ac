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
    edited = source.replace("return x - lr * g, s, m, g_avg", "return x - (lr + lr) * g, s, m, g_avg")
    assert edited != source
    rules.write_text(edited)
    after_edit = _run(tmp_path)
    assert after_edit["x"] == [0.0, 1.0]  # the edited rule ran, not a stale kernel
    assert after_edit["misses"] == 1
