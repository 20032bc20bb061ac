"""The Dask executor: local clusters and their reuse, a cluster that loses its workers, the main guard.

Faults are injected at chosen points: chunks that wait on an event until the
test has taken the cluster away, a chunk that raises Dask's KilledWorker, a
scatter that raises CommClosedError, a subprocess running a script without a
main guard. Nothing here waits on a clock.
"""

import importlib
import os
import subprocess
import sys
import textwrap
import threading
import types

import numpy as np
import pytest

import rmsnum as rn
from rmsnum import dask_executor
from rmsnum.dask_executor import ClusterLostError, MainGuardError

distributed = pytest.importorskip("dask.distributed")
import dask  # after the importorskip

executors = importlib.import_module("rmsnum.sweep.executors")  # the chunk loop looks up run_chunk here
REAL_RUN_CHUNK = executors.run_chunk
X0 = (-5.0, -2.0)
GRID = {"lr": [0.01, 0.05, 0.1, 0.2]}
RELEASE = threading.Event()


def run_sweep(**kwargs):
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), X0, 30, GRID, chunk_size=1, progress=False, **kwargs)


# Chunk runners the in-process workers import by name from this module.

def first_chunk_then_wait(plan, chunk, report=None):
    if chunk != 0:
        RELEASE.wait()
    return REAL_RUN_CHUNK(plan, chunk, report)


def chunk_one_kills_its_workers(plan, chunk, report=None):
    if chunk == 1:
        raise distributed.KilledWorker(task=f"chunk-{chunk}", last_worker=types.SimpleNamespace(address="tcp://gone:1"),
                                       allowed_failures=3)
    return REAL_RUN_CHUNK(plan, chunk, report)


def chunk_one_fails(plan, chunk, report=None):
    if chunk == 1:
        raise ZeroDivisionError("chunk 1 went wrong")
    return REAL_RUN_CHUNK(plan, chunk, report)


def only_chunks(*allowed):
    def run(plan, chunk, report=None):
        assert chunk in allowed, f"chunk {chunk} should have come from the checkpoint"
        return REAL_RUN_CHUNK(plan, chunk, report)
    return run


@pytest.fixture
def inproc_client():
    """A cluster of one in-process worker with a thread per chunk, whose tasks give up after 0.1 s
    without any worker (Dask's no-workers-timeout) instead of waiting forever, and whose client and
    worker give up reconnecting to a lost scheduler after 2 s (instead of 30)."""
    RELEASE.clear()
    with dask.config.set({"distributed.scheduler.no-workers-timeout": "100ms", "distributed.comm.timeouts.connect": "2s"}):
        client = distributed.Client(processes=False, n_workers=1, threads_per_worker=len(GRID["lr"]),
                                    dashboard_address=None, set_as_default=False)
        yield client
        RELEASE.set()
        client.close()


def lose_after_the_first_chunk(monkeypatch, lose):
    """Chunks other than 0 wait until ``lose(client)`` has run, right after chunk 0 is handed on."""
    real = dask_executor.execute

    def execute(client, run, plan, todo):
        chunks = real(client, run, plan, todo)
        yield next(chunks)
        lose(client)
        RELEASE.set()
        yield from chunks

    monkeypatch.setattr(dask_executor, "execute", execute)
    monkeypatch.setattr(executors, "run_chunk", first_chunk_then_wait)


# --------------------------------------------------------------------------- a cluster that loses its workers


@pytest.mark.parametrize("lose", [
    pytest.param(lambda client: client.cluster.sync(client.cluster.scheduler.close), id="scheduler-gone"),
    pytest.param(lambda client: client.cluster.scale(0), id="every-worker-gone"),
])
def test_a_lost_cluster_is_one_clear_error_and_the_finished_chunks_are_kept(inproc_client, monkeypatch, tmp_path,
                                                                             lose):
    expected = run_sweep()
    lose_after_the_first_chunk(monkeypatch, lose)
    with pytest.raises(ClusterLostError, match=r"lost its workers: 3 of 4 chunks did not finish \(chunks 1, 2, 3;"):
        run_sweep(backend=inproc_client, checkpoint=tmp_path / "ck")
    # Chunk 0 is in the checkpoint: resuming here computes only the others.
    monkeypatch.setattr(executors, "run_chunk", only_chunks(1, 2, 3))
    resumed = run_sweep(checkpoint=tmp_path / "ck")
    np.testing.assert_array_equal(resumed.final_x, expected.final_x)


def test_a_chunk_that_kills_its_workers_lets_the_others_finish(inproc_client, monkeypatch, tmp_path):
    expected = run_sweep()
    monkeypatch.setattr(executors, "run_chunk", chunk_one_kills_its_workers)
    with pytest.raises(ClusterLostError, match=r"1 of 4 chunks did not finish \(chunks 1; Dask said KilledWorker"):
        run_sweep(backend=inproc_client, checkpoint=tmp_path / "ck")
    monkeypatch.setattr(executors, "run_chunk", only_chunks(1))
    np.testing.assert_array_equal(run_sweep(checkpoint=tmp_path / "ck").final_x, expected.final_x)


def test_an_error_of_the_chunk_itself_is_raised_as_it_is(inproc_client, monkeypatch):
    monkeypatch.setattr(executors, "run_chunk", chunk_one_fails)
    with pytest.raises(ZeroDivisionError, match="chunk 1 went wrong"):
        run_sweep(backend=inproc_client)


def test_an_unreachable_scheduler_is_a_lost_cluster(inproc_client, monkeypatch):
    from distributed.comm import CommClosedError

    def scatter(*args, **kwargs):
        raise CommClosedError("in <TCP (closed)>: Stream is closed")

    monkeypatch.setattr(inproc_client, "scatter", scatter)
    with pytest.raises(ClusterLostError, match="cannot be reached .CommClosedError: in <TCP"):
        run_sweep(backend=inproc_client)


# --------------------------------------------------------------------------- clusters


def test_local_cluster_runs_many_sweeps_on_the_same_workers(capsys):
    problem = rn.LinearRegression(rn.data.synthetic_regression(n=40, d=3, seed=3))
    train_grid = {"lr": [0.01, 0.05], "seed": [0, 1]}
    with rn.local_cluster(n_workers=2, threads_per_worker=1, dashboard=False) as client:
        assert "rmsnum: started a local Dask cluster of 2 workers x 1 thread; no dashboard" in capsys.readouterr().out
        workers = client.run(os.getpid)
        assert len(set(workers.values())) == 2
        assert set(client.run(_numba_threads).values()) == {1}
        # The same sweep twice: each scatters its own copy of the plan.
        first, second = run_sweep(backend=client), run_sweep(backend=client)
        trained = rn.train_sweep(rn.RMSProp, problem, 8, 2, train_grid, progress=False, chunk_size=1, backend=client)
        assert client.run(os.getpid) == workers
        cluster = client.cluster
    assert client.status == "closed" and cluster.status.name == "closed"
    expected = run_sweep()
    for res in (first, second):
        np.testing.assert_array_equal(res.final_x, expected.final_x)
    np.testing.assert_array_equal(trained.loss, rn.train_sweep(rn.RMSProp, problem, 8, 2, train_grid,
                                                               progress=False, chunk_size=1).loss)


def _numba_threads():
    import numba

    return numba.get_num_threads()


def test_dask_backend_starts_one_worker_per_core_and_says_so(capsys):
    res = run_sweep(backend="dask")
    np.testing.assert_array_equal(res.final_x, run_sweep().final_x)
    cores = len(os.sched_getaffinity(0))
    line = capsys.readouterr().out
    assert f"rmsnum: started a local Dask cluster of {cores} worker" in line
    has_bokeh = importlib.util.find_spec("bokeh") is not None
    assert ("dashboard http://" in line) if has_bokeh else ("no dashboard (it needs bokeh: pip install bokeh)" in line)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_workers=0), ValueError, "n_workers must be a positive int, got 0"),
    (dict(n_workers=2.0), TypeError, "n_workers must be a positive int, got 2.0 of type float"),
    (dict(threads_per_worker=True), TypeError, "threads_per_worker must be a positive int"),
    (dict(threads_per_worker=-1), ValueError, "threads_per_worker must be a positive int, got -1"),
    (dict(dashboard=8787), TypeError, "dashboard must be True, False or an address such as ':8787', got 8787"),
])
def test_local_cluster_refuses_bad_arguments(kwargs, error, match, monkeypatch):
    monkeypatch.setattr(dask_executor, "_start", None)  # nothing may start
    with pytest.raises(error, match=match):
        rn.local_cluster(**kwargs)


def test_importing_rmsnum_imports_no_dask():
    code = ("import sys, rmsnum; rmsnum.local_cluster; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the main guard

UNGUARDED = {
    "sweep": """
        import rmsnum as rn

        res = rn.sweep(rn.SGD, rn.quadratic_2d(), (-5, -2), 5, {"lr": [0.1, 0.2]}, progress=False, backend="dask")
        print("ran", res.final_loss)
    """,
    "local_cluster": """
        import rmsnum as rn

        def main():
            return rn.local_cluster(n_workers=1)

        client = main()
    """,
}


@pytest.mark.parametrize("script", list(UNGUARDED))
def test_a_script_without_a_main_guard_gets_one_clear_error(tmp_path, script):
    path = tmp_path / "study.py"
    path.write_text(textwrap.dedent(UNGUARDED[script]))
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert 'if __name__ == "__main__":' in done.stderr and "MainGuardError" in done.stderr
    assert done.stderr.count("Traceback") == 1 and "Nanny failed" not in done.stderr
    assert f"the call comes from {path}, line" in done.stderr
    assert "ran" not in done.stdout


def test_the_guard_is_found_in_the_source(tmp_path):
    path = tmp_path / "study.py"
    path.write_text(textwrap.dedent("""\
        import rmsnum as rn                      # 1
        x = 1                                    # 2
        if __name__ == "__main__":               # 3
            rn.sweep()                           # 4
            if x:                                # 5
                rn.sweep()                       # 6
        if "__main__" == __name__:               # 7
            rn.sweep()                           # 8
        if __name__ != "__main__":               # 9
            rn.sweep()                           # 10
        else:                                    # 11
            rn.sweep()                           # 12
    """))
    outside = [line for line in range(1, 13) if dask_executor._outside_guard(str(path), line)]
    assert outside == [1, 2, 3, 7, 9, 10, 11]
    assert not dask_executor._outside_guard(str(tmp_path / "missing.py"), 1)


def test_a_reimported_main_module_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__mp_main__"))
    with pytest.raises(MainGuardError, match='backend="dask" starts Dask worker processes'):
        rn.sweep(rn.SGD, rn.quadratic_2d(), X0, 5, {"lr": [0.1]}, progress=False, backend="dask")
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):  # nothing is re-imported
        dask_executor.check_main_guard('backend="dask"')
