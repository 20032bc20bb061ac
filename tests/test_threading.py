"""Kernels called from several Python threads at once: the same numbers, and never an abort,
whatever Numba's threading layer (its ``workqueue`` layer aborts on concurrent parallel use).

The child processes import this module to run the same threaded functions under workqueue.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np

import rmsnum as rn
from rmsnum.backends import cpu

THREADS = 8
OPT = rn.RMSProp(lr=0.01, momentum=0.5, centered=True)
GRID = {"lr": np.linspace(0.01, 0.5, cpu.LANES)}  # one block of lanes: the parallel sweep kernel


def _starts() -> list[np.ndarray]:
    """One array per thread, of the parallel path's size."""
    return [np.linspace(-1.0, 1.0, cpu.PARALLEL_THRESHOLD) + k for k in range(THREADS)]


def _steps(x: np.ndarray) -> None:
    state = OPT.init(x)
    for _ in range(20):
        OPT.step(x, 2.0 * x + 1.0, state)


def _sweep() -> np.ndarray:
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), (1.0, 1.0), 50, grid=GRID, progress=False).final_loss


def _in_threads(target, count: int) -> list:
    """``target()`` in ``count`` threads started together; their results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(k: int) -> None:
        barrier.wait()
        results[k] = target(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def threaded_steps() -> np.ndarray:
    """Each thread steps its own array."""
    xs = _starts()
    _in_threads(lambda k: _steps(xs[k]), THREADS)
    return np.stack(xs)


def threaded_sweeps() -> np.ndarray:
    return np.stack(_in_threads(lambda k: _sweep(), 4))


def _under_workqueue(function: str, tmp_path: Path) -> np.ndarray:
    """The result of this module's ``function()`` in a child process under the workqueue layer."""
    out = tmp_path / "result.npy"
    script = "\n".join([
        "import sys, numba, numpy as np",
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})",
        "import test_threading",
        "from rmsnum.backends import cpu",
        f"result = test_threading.{function}()",
        "assert not cpu.thread_safe_layer() and numba.threading_layer() == 'workqueue'",
        f"np.save({str(out)!r}, result)",
    ])
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    child = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600,
                           check=False)
    assert child.returncode == 0, f"the child exited with {child.returncode}:\n{child.stderr[-3000:]}"
    return np.load(out)


def _one_at_a_time() -> np.ndarray:
    """The arrays of :func:`threaded_steps`, stepped in turn in this thread."""
    xs = _starts()
    for x in xs:
        _steps(x)
    return np.stack(xs)


def test_step_from_8_threads_under_workqueue_falls_back_to_serial(tmp_path):
    """Under workqueue the step runs the serial kernel instead of aborting the process,
    with the numbers of one array at a time here (parallel or serial: bit for bit)."""
    assert np.array_equal(_under_workqueue("threaded_steps", tmp_path), _one_at_a_time())


def test_sweep_from_threads_under_workqueue_falls_back_to_serial(tmp_path):
    """The multi-configuration kernel of a sweep, too (serial kernels on rmsnum's own
    thread pool, which any layer allows)."""
    got = _under_workqueue("threaded_sweeps", tmp_path)
    expected = _sweep()
    assert all(np.array_equal(row, expected) for row in got)


def test_step_from_8_threads_under_this_processs_layer():
    """A thread-safe layer (tbb, omp) runs the threads' parallel kernels concurrently."""
    assert cpu.thread_safe_layer() == (numba.threading_layer() != "workqueue")
    assert np.array_equal(threaded_steps(), _one_at_a_time())
