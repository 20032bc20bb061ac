"""Dask: an executor of a sweep's chunks, on a local cluster or on the user's own.

A sweep is planned and checked here, in the user's process; its chunks are
independent, so any process that can import rmsnum can run one. This module
starts local clusters (:func:`local_cluster`), runs chunks on a cluster as they
finish (:func:`execute`) and turns the ways a cluster can fail a sweep into
one clear error each: a cluster that lost its workers
(:class:`ClusterLostError`), and a script without a main guard, whose every
worker would start a cluster of its own (:func:`check_main_guard`).

Nothing here imports Dask before it is needed, so ``import rmsnum`` never does.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import tokenize
from typing import Any, Callable, Iterator, Sequence

from ._config import NO_WORKERS_TIMEOUT

GUARD = 'if __name__ == "__main__":'


class ClusterLostError(RuntimeError):
    """The Dask cluster lost its workers (or its scheduler) while a sweep ran.

    Every chunk that finished before the loss has already been handed on (and
    saved, when the sweep has a checkpoint).
    """


class MainGuardError(RuntimeError):
    """A script starts Dask worker processes from code that each worker re-runs."""


# --------------------------------------------------------------------------- the main guard


def _guard_message(where: str) -> str:
    return (
        f"{where} starts Dask worker processes, and each of them re-imports your main script: code at its top "
        "level runs again in every worker, and would start a cluster there too. Put the script's work under a "
        f"main guard:\n\n    {GUARD}\n        ...  # everything that runs sweeps\n"
    )


def _outside_guard(path: str, lineno: int) -> bool:
    """Whether line ``lineno`` of the Python file ``path`` lies outside every block
    guarded by ``if __name__ == "__main__":`` (or the ``else`` of ``!=``); False
    when the file cannot be read."""
    try:
        with tokenize.open(path) as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        block = _main_block(node)
        if block and block[0].lineno <= lineno <= (block[-1].end_lineno or block[-1].lineno):
            return False
    return True


def _main_block(node: ast.AST) -> list[ast.stmt]:
    """The statements that run only in the main module: the body of ``if __name__ ==
    "__main__":`` (either way round), the ``else`` of ``!=``; else none."""
    if not isinstance(node, ast.If):
        return []
    test = node.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
        return []
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    if len(names) != 1 or len(texts) != 1:
        return []
    return node.body if isinstance(test.ops[0], ast.Eq) else node.orelse


def check_main_guard(where: str) -> None:
    """Refuse to start worker processes from the top level of an unguarded main script.

    Dask starts its worker processes with ``spawn`` (or ``forkserver``), which
    re-imports the main module in each of them under the name ``__mp_main__``.
    A sweep called at the top level of a script (not under ``if __name__ ==
    "__main__":``) would then run again in every worker and start a cluster
    there, and Dask would fail with pages of "Nanny failed to start". This
    finds the line of the main script that led to this call and raises
    :class:`MainGuardError` when it lies outside a main guard, or when this
    process is such a re-import.

    Parameters
    ----------
    where : str
        What starts the workers, for the message (e.g. ``'backend="dask"'``).

    Raises
    ------
    MainGuardError
        With the guard to write.

    Examples
    --------
    >>> check_main_guard('backend="dask"')   # under pytest or a REPL: nothing to refuse
    """
    import dask
    import distributed  # noqa: F401  (adds its defaults to dask.config)

    if dask.config.get("distributed.worker.multiprocessing-method") not in ("spawn", "forkserver"):
        return
    main = sys.modules.get("__main__")
    if main is None:
        return
    if main.__name__ == "__mp_main__":
        raise MainGuardError(_guard_message(where))
    path = getattr(main, "__file__", None)
    if path is None:  # an interactive session or python -c: nothing is re-run
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is not None and _outside_guard(path, frame.f_lineno):
        raise MainGuardError(_guard_message(where) + f"\n(the call comes from {path}, line {frame.f_lineno})")


# --------------------------------------------------------------------------- clusters


def _require() -> None:
    if importlib.util.find_spec("distributed") is None:
        raise ImportError('the dask backend needs dask.distributed: pip install "rmsnum[dask]"')


def check_backend(backend: Any, allowed: Sequence[str]) -> None:
    """Check ``backend``, which is ``"dask"`` or should be a Client, before any work.

    Raises ``ImportError`` without dask.distributed, ``TypeError`` for anything
    but ``"dask"`` or a ``dask.distributed.Client`` (naming ``allowed``), and
    :class:`MainGuardError` for ``"dask"`` at the top level of an unguarded script.
    """
    _require()
    from dask.distributed import Client

    if isinstance(backend, str):
        check_main_guard('backend="dask"')
    elif not isinstance(backend, Client):
        raise TypeError(f"backend must be one of {tuple(allowed)} or a dask.distributed.Client, got {backend!r}")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _start(n_workers: int, threads_per_worker: int, dashboard: bool | str, set_as_default: bool) -> Any:
    """A Client of a new local cluster of worker processes, announced on stdout with its dashboard link."""
    import dask
    from dask.distributed import Client

    has_bokeh = importlib.util.find_spec("bokeh") is not None
    # The scheduler serves HTTP (its dashboard when bokeh is there) in any case: on a free port unless
    # told otherwise, not on Dask's default 8787, which another cluster may hold.
    address = dashboard if isinstance(dashboard, str) else ":0"
    with dask.config.set({"distributed.scheduler.no-workers-timeout": NO_WORKERS_TIMEOUT}):
        # The client owns the cluster it starts: closing the client closes the cluster.
        client = Client(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                        dashboard_address=address, set_as_default=set_as_default,
                        env={"NUMBA_NUM_THREADS": str(threads_per_worker)})
    if dashboard is not False and has_bokeh:
        link = f"dashboard {client.dashboard_link}"
    elif dashboard is not False:
        link = "no dashboard (it needs bokeh: pip install bokeh)"
    else:
        link = "no dashboard"
    print(f"rmsnum: started a local Dask cluster of {n_workers} worker{'s' if n_workers != 1 else ''} "
        f"x {threads_per_worker} thread{'s' if threads_per_worker != 1 else ''}; {link}")
    return client


def local_cluster(n_workers: int | None = None, threads_per_worker: int = 1, dashboard: bool | str = True) -> Any:
    """Start a local Dask cluster of worker processes, to run many sweeps on.

    Pass the returned client as ``backend=`` to :func:`rmsnum.sweep` and
    :func:`rmsnum.train_sweep` as often as you like: the workers start (and
    load the compiled kernels) once. Close the client when done, or use it
    as a context manager; closing it closes the cluster.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; by default one per core this process may use.
    threads_per_worker : int, default 1
        Threads of each worker; each chunk's kernel runs on that many threads
        (``NUMBA_NUM_THREADS`` of the workers), so ``n_workers *
        threads_per_worker`` should not pass the number of cores.
    dashboard : bool or str, default True
        Serve Dask's dashboard on a free port (or on the address given, e.g.
        ``":8787"``) and print its link; it needs bokeh (``pip install bokeh``).

    Returns
    -------
    dask.distributed.Client

    Raises
    ------
    TypeError, ValueError
        For bad arguments.
    MainGuardError
        When called at the top level of a script without ``if __name__ ==
        "__main__":`` (each worker would re-run it).

    Examples
    --------
    >>> import rmsnum as rn
    >>> with rn.local_cluster(n_workers=2, dashboard=False) as client:  # doctest: +SKIP
    ...     a = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 100, {"lr": [0.1, 0.4]}, backend=client)
    ...     b = rn.sweep(rn.SGD, rn.quadratic_2d(), (-5, -2), 100, {"lr": [0.1, 0.4]}, backend=client)
    rmsnum: started a local Dask cluster of 2 workers x 1 thread; no dashboard
    """
    workers = _cores() if n_workers is None else _positive("n_workers", n_workers)
    threads = _positive("threads_per_worker", threads_per_worker)
    if not isinstance(dashboard, (bool, str)):
        raise TypeError(f"dashboard must be True, False or an address such as ':8787', got {dashboard!r}")
    _require()
    check_main_guard("rn.local_cluster()")
    return _start(workers, threads, dashboard, True)


def client_for(backend: Any) -> Any:
    """The Client to run on: ``backend`` itself, or for ``"dask"`` a new
    temporary local cluster of one single-threaded worker per core."""
    if isinstance(backend, str):
        return _start(_cores(), 1, True, False)
    return backend


def close(client: Any) -> None:
    """Close a client made by :func:`client_for`, and with it its cluster."""
    client.close()


# --------------------------------------------------------------------------- running chunks


def _lost(future: Any, error: BaseException) -> bool:
    """Whether a future that did not finish (with ``error``) failed because the cluster lost it."""
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker, NoWorkerError

    return future.cancelled() or isinstance(error, (KilledWorker, NoWorkerError, CommClosedError))


def execute(client: Any, run: Callable[[Any, int], Any], plan: Any, todo: list[int]) -> Iterator[tuple[int, Any]]:
    """Yield ``(chunk, run(plan, chunk))`` for every chunk of ``todo``, as they finish on ``client``'s cluster.

    Results are fetched as soon as their chunk finishes. When the cluster
    loses chunks (its workers or its scheduler gone, or a chunk killing the
    workers that run it), the chunks that still finish are yielded first, then
    :class:`ClusterLostError` is raised. An error of ``run`` itself is raised
    as it is.

    Raises
    ------
    ClusterLostError
        Naming the chunks that did not finish and the error Dask gave.
    """
    from dask.distributed import as_completed

    try:
        # A key of its own (hash=False): an identical plan scattered by an earlier sweep on the same
        # cluster may still be being released, and would take this sweep's copy with it.
        plan_future = client.scatter(plan, broadcast=True, hash=False)
        futures = {client.submit(run, plan_future, c, pure=False): c for c in todo}
    except OSError as err:  # CommClosedError, TimeoutError: no scheduler to talk to
        raise ClusterLostError(f"the Dask cluster cannot be reached ({type(err).__name__}: {err})") from err
    missing: list[int] = []
    first: BaseException | None = None
    for future, result in as_completed(futures, with_results=True, raise_errors=False, loop=client.loop):
        chunk = futures.pop(future)
        if future.status == "finished":
            yield chunk, result
            continue
        error = result if future.cancelled() else future.exception()
        if not _lost(future, error):
            future.result()  # the chunk's own error, raised with its traceback
        missing.append(chunk)
        first = first or error
    if missing:
        shown = ", ".join(map(str, sorted(missing)[:10])) + (", ..." if len(missing) > 10 else "")
        raise ClusterLostError(
            f"the Dask cluster lost its workers: {len(missing)} of {len(todo)} chunks did not finish "
            f"(chunks {shown}; Dask said {type(first).__name__}: {first}). A worker that runs out of memory is "
            "killed: a smaller chunk_size= or fewer workers per machine may help"
        ) from first
