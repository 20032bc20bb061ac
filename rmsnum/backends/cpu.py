"""The Numba CPU backend: the rules of :mod:`rmsnum.rules` compiled with ``numba.njit``.

Kernels are written once as templates whose element update, :func:`_update`,
calls a global name ``rule``; for each rule, :func:`kernels_for` makes copies
in which ``rule`` is the compiled rule. Kernels are private, take arrays and
scalars, write their outputs in place and return nothing. They are cached on
disk; the cache key includes a digest of ``rules.py`` (see :mod:`._cache`).

Three kernel families:

- ``step``: one in-place update of arrays of any size (``prange`` over
  elements when large).
- ``run_objective``: whole trajectories of many configurations on an
  objective: a quadratic, or a user's :class:`rmsnum.Objective` whose
  compiled value and gradient functions are bound into the kernel instance
  (see :func:`rmsnum.backends._parts._objective_value`). Configurations are laid out in blocks of ``w`` lanes; the lanes
  of a block go through each step together, so LLVM turns the element loop
  into SIMD instructions. :func:`rmsnum.simulate` is this kernel with one
  block of one lane, :func:`rmsnum.sweep` with many, so a sweep reproduces
  simulate bit for bit.
- ``train``: minibatch training of blocks of configurations on a linear regression.

The multi-configuration kernels are serial and release the GIL; blocks run in
parallel on a pool of Python threads (:func:`_over_blocks`, as many as
``numba.get_num_threads()``), each thread a contiguous range of blocks. A
serial kernel compiles in about 60% of the time of a ``prange`` one and
vectorises its lane loops as well, and the pool works under every threading
layer.

Specialisation happens through argument types: a state slot the rule does not
use is passed as ``None`` (no memory traffic), a coefficient of an option that
is off as ``ZERO`` or ``ONE`` (no arithmetic; see :mod:`rmsnum._neutral`).
Kernels use ``error_model="numpy"``: a division by zero gives inf or NaN, which
the kernels report as divergence, never an exception.

Threads: every kernel may be called from several Python threads at once, except
that Numba's ``workqueue`` threading layer aborts the process when two parallel
regions run at the same time. Under that layer (see :func:`thread_safe_layer`)
the step runs serially: the results are the same, bit for bit, on one core.
"""

from __future__ import annotations

import functools
import math
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numba
import numpy as np
from numba import prange

from .. import rules
from . import _cache
from .._neutral import ONE, Neutral
from ._compile import compile_plain, rebind
from .base import done, host_kernel_form, in_order, nothing_missing, nothing_required
from ._parts import (_full_loss, _gather, _get, _objective_value, _quadratic_value, _slots_at, _squares,
                     _zero_slots, element_update, norm_clipped)

_cache.install()

from .._config import CACHE, JIT_FASTMATH, LANES, MAX_UNROLLED_DIM, PARALLEL_THRESHOLD

NAME = "cpu"
"""This backend's name, as ``backend=`` spells it."""

# The parts of the interface (rmsnum.backends.base.Backend) shared by the host backends.
missing, require, kernel_form, pipeline = nothing_missing, nothing_required, host_kernel_form, in_order


@functools.cache
def thread_safe_layer() -> bool:
    """Whether Numba's threading layer lets parallel kernels run from several Python
    threads at once: False for ``workqueue``, which aborts the process on concurrent
    use (tbb and omp are thread-safe). Asking loads the configured layer
    (``NUMBA_THREADING_LAYER``) and starts its threads, as the first parallel call
    would, so it is asked only then, once per process."""
    numba.get_num_threads()  # loads the threading layer
    return numba.threading_layer() != "workqueue"


def _step_template(x, g, S, r1, r2, c):
    for i in prange(x.size):
        _update(x, g, i, S, r1, r2, c)  # noqa: F821 - bound per rule by _instantiate


_jit = functools.partial(numba.njit, error_model="numpy", fastmath=JIT_FASTMATH)
_gaussian = compile_plain(rules.gaussian, _jit)
_debias = compile_plain(rules.debias, _jit)


def _advance(x, g, S, d, dec, C, like, r1, r2, one):
    """One update of the lanes of a block: x and the state slots ``S`` (n, w) <- the
    rule applied with gradient ``g`` (n, w); the bias denominators ``d`` (2, w)
    advance first (decays ``dec``), unless None. Like the kernels, each
    instance has LANES and DIM bound as constants, so that the coordinate loop
    unrolls and the lane loop becomes SIMD code even if it is not inlined."""
    n = DIM if DIM else x.shape[0]  # noqa: F821 - bound per instance by _instantiate
    w = LANES  # noqa: F821 - bound per instance
    if d is not None:
        for j in range(w):
            d[0, j] = _debias(d[0, j], dec[0, j], dec[1, j])
            d[1, j] = _debias(d[1, j], dec[2, j], dec[3, j])
            r1[j] = one / d[0, j]
            r2[j] = one / d[1, j]
    for j in range(w):
        c = norm_clipped(_gather(C, j, like), _squares(g, j, n, like))  # Keras' clipnorm, if on
        for i in range(n):
            if d is None:
                _update(x, g, (i, j), S, ONE, ONE, c)  # noqa: F821 - bound per rule
            else:
                _update(x, g, (i, j), S, r1[j], r2[j], c)  # noqa: F821


@_jit
def _restart(value, x, g, S, n, w):
    """Restart from zero the lanes whose ``value`` is not finite. Their results
    are saved by then, and finite lanes keep the whole block on the fast path."""
    for j in range(w):
        if not math.isfinite(value[j]):
            for i in range(n):
                x[i, j] = 0
                g[i, j] = 0
                _zero_slots(S, (i, j))


def _run_objective_template(x, S, d, dec, C, like, P, one, half, sigma, seeds, fstar, tol, steps, every,
                            loss_rec, x_rec, final_loss, diverged, hit):
    """Run ``steps`` updates of blocks of configurations on one objective.

    ``_evaluate(P, x, g, j, n, half)``, bound per instance, writes the gradient
    of lane j into ``g`` and returns the value: :func:`._parts._quadratic_value`
    with ``P = (A, b)``, or a user objective's :func:`._parts._objective_value`
    with ``P`` its extra arguments.

    Every per-configuration array has a leading block axis and a trailing lane
    axis of LANES lanes (a constant bound per instance): the lanes of a block move through each step
    together (SIMD), blocks one after the other. ``x`` and the arrays of the tuple
    ``S`` of state slots (blocks, n, w; None for a slot without array) hold the
    start and state and end with the final values;
    ``d`` (blocks, 2, w) the bias denominators with decays ``dec`` (blocks, 4, w),
    or both None for rules without bias correction. ``C`` (blocks, T, k, w) holds
    the coefficients that are not ZERO/ONE in ``like``, one row per update:
    update ``t`` uses row ``min(t, T - 1)`` (T = steps: a per-step schedule;
    T = 1: the same coefficients at every update). ``seeds``
    (blocks, w) keys the gradient noise of scale ``sigma`` (None: no noise).

    Outputs (blocks, ..., w): ``final_loss`` and ``diverged`` (first step whose
    x or loss is not finite, else -1; a diverged lane stops there);
    ``loss_rec`` (blocks, nrec, w) and ``x_rec`` (blocks, nrec, n, w) every
    ``every`` steps (rows after a divergence are left as they are; nrec 0:
    nothing recorded), and ``hit`` (blocks, ntol, w) the first step with
    ``loss - fstar < tol[k]`` (else left). These are always arrays, of zero
    length when unused, so that record modes and tolerances share one kernel.
    """
    # LANES and DIM are compile-time constants bound per instance: with the
    # coordinate loops unrolled inside the lane loops, LLVM turns each lane
    # loop into SIMD instructions (DIM 0: any dimension, without that).
    nblocks = x.shape[0]
    n = DIM if DIM else x.shape[1]  # noqa: F821 - DIM bound per instance by _instantiate
    w = LANES
    for blk in range(nblocks):
        xb = x[blk]
        Sb = _slots_at(S, blk)
        db = _get(d, blk, None)
        decb = _get(dec, blk, None)
        Cb = C[blk]
        last = Cb.shape[0] - 1
        seedb = _get(seeds, blk, None)
        lossb = loss_rec[blk]
        xrb = x_rec[blk]
        hitb = hit[blk]
        record_loss = lossb.shape[0] > 0
        record_x = xrb.shape[0] > 0
        final = final_loss[blk]
        div = diverged[blk]
        g = np.empty((n, w), x.dtype)
        x_at_divergence = np.empty((n, w), x.dtype)
        value = np.empty(w, x.dtype)
        noise = np.empty(w, x.dtype)
        r1 = np.empty(w, x.dtype)
        r2 = np.empty(w, x.dtype)
        running = w
        for j in range(w):
            div[j] = -1
        for t in range(steps + 1):
            finite = True
            for j in range(w):
                value[j] = _evaluate(P, xb, g, j, n, half)  # noqa: F821 - bound per instance
                finite &= math.isfinite(value[j])
            # A non-finite x makes the value non-finite (A is positive definite; a
            # user objective's value is made NaN), so checking the value checks x too.
            if not finite:
                for j in range(w):
                    if div[j] < 0 and not math.isfinite(value[j]):
                        div[j] = t
                        running -= 1
                        final[j] = value[j]
                        for i in range(n):
                            x_at_divergence[i, j] = xb[i, j]
            if record_loss and t % every == 0:
                for j in range(w):
                    if div[j] < 0 or div[j] == t:
                        lossb[t // every, j] = value[j]
            if record_x and t % every == 0:
                for i in range(n):
                    for j in range(w):
                        if div[j] < 0 or div[j] == t:
                            xrb[t // every, i, j] = xb[i, j]
            for k in range(tol.size):
                for j in range(w):
                    if div[j] < 0 and hitb[k, j] < 0 and value[j] - fstar < tol[k]:
                        hitb[k, j] = t
            if t == steps or running == 0:
                break
            if not finite:
                _restart(value, xb, g, Sb, n, w)
            if seeds is not None:
                for i in range(n):
                    for j in range(w):
                        noise[j] = _gaussian(seedb[j], 0, t, i)
                        g[i, j] = g[i, j] + sigma * noise[j]
            _advance(xb, g, Sb, db, decb, Cb[min(t, last)], like, r1, r2, one)
        for j in range(w):
            if div[j] < 0:
                final[j] = value[j]
            else:
                for i in range(n):
                    xb[i, j] = x_at_divergence[i, j]


def _train_template(p, S, d, dec, C, like, X, y, order, batch, every, batch_size, last_size, one, H, pstar,
                    fstar, loss_rec, final_loss, diverged):
    """Minibatch training of blocks of configurations on a linear regression.

    ``p`` (blocks, n, w) holds the parameters (the weights, then the bias) of
    each lane and ends with the final values; the state, ``d``, ``dec``, ``C``
    and ``like`` are as in :func:`_run_objective_template`. Epoch ``e`` visits
    the rows ``order[e]`` of ``X``, ``y`` in minibatches of ``batch`` (the last
    one may be smaller); all lanes see the same minibatches. ``batch_size`` and
    ``last_size`` are the two minibatch sizes in the working dtype. The
    gradient is that of the loss (y_hat - y)**2 / 2 averaged over the minibatch.

    Outputs (blocks, ..., w): ``final_loss`` (float64, the full-data loss via
    ``H``, ``pstar``, ``fstar``, see :func:`._parts._full_loss`), ``diverged`` (the
    number of updates done when a minibatch loss was first not finite, else -1;
    such a lane keeps its parameters of then) and, when not None, ``loss_rec``
    (blocks, nrec, w) the full-data loss whenever the examples seen reach a
    multiple of ``every`` (rows after a divergence are left as they are).
    """
    for blk in range(p.shape[0]):
        _train_block(p[blk], _slots_at(S, blk), _get(d, blk, None),
                     _get(dec, blk, None), C[blk], like, X, y, order, batch, every, batch_size, last_size, one, H,
                     pstar, fstar, _get(loss_rec, blk, None), final_loss[blk], diverged[blk])


def _train_block(pb, Sb, db, decb, Cb, like, X, y, order, batch, every, batch_size, last_size, one, H, pstar,
                 fstar, lossb, final, div):
    """One block of :func:`_train_template` (the arguments are its arrays at that block)."""
    n = DIM if DIM else pb.shape[0]  # noqa: F821 - DIM bound per instance by _instantiate
    nf = n - 1
    w = LANES  # noqa: F821 - bound per instance
    epochs, rows = order.shape
    g = np.empty((n, w), pb.dtype)
    p_at_divergence = np.empty((n, w), pb.dtype)
    batch_loss = np.empty(w, pb.dtype)
    features = np.empty(nf, pb.dtype)
    r1 = np.empty(w, pb.dtype)
    r2 = np.empty(w, pb.dtype)
    running = w
    for j in range(w):
        div[j] = -1
    t = 0
    seen = 0
    rec = 0
    for e in range(epochs):
        for start in range(0, rows, batch):
            stop = min(start + batch, rows)
            for j in range(w):
                batch_loss[j] = 0
                for i in range(n):
                    g[i, j] = 0
            for q in range(start, stop):
                row = order[e, q]
                target = y[row]
                for k in range(nf):  # a private copy stays in registers through the lane loop
                    features[k] = X[row, k]
                for j in range(w):
                    pred = features[0] * pb[0, j]
                    for k in range(1, nf):
                        pred += features[k] * pb[k, j]
                    res = pred + pb[nf, j] - target
                    batch_loss[j] += res * res
                    for k in range(nf):
                        g[k, j] += res * features[k]
                    g[nf, j] += res
            finite = True
            for j in range(w):
                finite &= math.isfinite(batch_loss[j])
            if not finite:
                for j in range(w):
                    if div[j] < 0 and not math.isfinite(batch_loss[j]):
                        div[j] = t
                        running -= 1
                        final[j] = batch_loss[j]
                        for i in range(n):
                            p_at_divergence[i, j] = pb[i, j]
                if running == 0:
                    break
                _restart(batch_loss, pb, g, Sb, n, w)
            size = batch_size if stop - start == batch else last_size
            for i in range(n):
                for j in range(w):
                    g[i, j] = g[i, j] / size
            _advance(pb, g, Sb, db, decb, Cb, like, r1, r2, one)
            t += 1
            seen += stop - start
            if seen % every == 0:
                if lossb is not None:
                    for j in range(w):
                        if div[j] < 0:
                            lossb[rec, j] = _full_loss(H, pstar, fstar, pb, j, n)
                rec += 1
        if running == 0:
            break
    for j in range(w):
        if div[j] < 0:
            final[j] = _full_loss(H, pstar, fstar, pb, j, n)
        else:
            for i in range(n):
                pb[i, j] = p_at_divergence[i, j]


def _specialise(helper: Callable, tag: str, **names) -> Callable:
    """A dispatcher of a copy of ``helper`` with the globals ``names``, named after ``tag``.

    A helper that LLVM does not inline is linked by symbol, and a kernel
    loaded from the disk cache refers to it by name: the name must say which
    rule and constants it was compiled with, or two instances clash."""
    copy = rebind(helper, **names)
    copy.__qualname__ = f"{helper.__name__}__{tag}"
    return _jit(copy)


@functools.cache
def _element_update(rule: Callable) -> Callable:
    """The element update of ``rule`` (with the rule compiled): one dispatcher per
    rule, shared by all its kernels, so that each argument type compiles once."""
    return _specialise(element_update(len(rules.lookup(rule).slots)), rule.__name__,
                       rule=compile_plain(rule, _jit))


@functools.cache
def _specialised(helper: Callable, rule: Callable, lanes: int, dim: int) -> Callable:
    """``helper`` (:func:`_advance`, :func:`_train_block`) for one rule, lane count and
    dimension: one dispatcher each, shared by the kernels of that specialisation."""
    names = dict(_update=_element_update(rule), LANES=lanes, DIM=dim)
    if helper is _train_block:
        names["_advance"] = _specialised(_advance, rule, lanes, dim)
    return _specialise(helper, f"{rule.__name__}__{lanes}x{dim}", **names)


@functools.cache
def _evaluator(evaluate: Callable, objective: str) -> Callable:
    """The objective's evaluation (:func:`._parts._quadratic_value`, or a user
    objective's, named ``objective``): one dispatcher each, shared by every rule's kernels."""
    return _specialise(evaluate, f"objective{objective}")


def _instantiate(template: Callable, rule: Callable, *, cache: bool = True, lanes: int = 1, dim: int = 0,
                 evaluate: Callable = _quadratic_value, objective: str = "", **jit_options) -> Callable:
    """A cached Numba dispatcher of ``template`` whose element update applies
    ``rule`` (for the multi-configuration kernels: with ``lanes`` lanes per block,
    ``dim`` coordinates, 0 for any, and ``evaluate`` the objective's evaluation,
    named ``objective`` in the kernel's name)."""
    names = dict(_update=_element_update(rule), LANES=lanes, DIM=dim)
    names["_advance"] = _specialised(_advance, rule, lanes, dim)
    names["_train_block"] = _specialised(_train_block, rule, lanes, dim)
    names["_evaluate"] = _evaluator(evaluate, objective)
    fn = rebind(template, **names)
    suffix = "parallel" if jit_options.get("parallel") else "serial"
    if template is not _step_template:
        suffix += f"_{lanes}x{dim}{objective}"
    # A distinct qualname gives each (template, rule, mode) its own cache file.
    fn.__qualname__ = f"{template.__name__.replace('_template', '')}__{rule.__name__}__{suffix}"
    return numba.njit(cache=cache and CACHE, error_model="numpy", fastmath=JIT_FASTMATH, **jit_options)(fn)


@functools.cache
def kernels_for(rule: Callable) -> types.SimpleNamespace:
    """The compiled kernels of one rule (created lazily, compiled on first call)."""
    return types.SimpleNamespace(
        step_serial=_instantiate(_step_template, rule),
        step_parallel=_instantiate(_step_template, rule, parallel=True),
    )


@functools.cache
def _train_kernel(rule: Callable, lanes: int, dim: int) -> Callable:
    """The training kernel for blocks of ``lanes`` lanes and ``dim`` parameters (0: any)."""
    return _instantiate(_train_template, rule, lanes=lanes, dim=dim, nogil=True)


@functools.cache
def _run_objective_kernel(rule: Callable, lanes: int, dim: int, functions: tuple | None = None) -> Callable:
    """The multi-configuration kernel for blocks of ``lanes`` lanes and ``dim``
    coordinates (0: any), on a quadratic (``functions`` None) or on the
    objective with the compiled ``(value, grad)`` functions. Kernels of
    rmsnum's own objectives are cached on disk; those of a user's are compiled
    in each process (Numba's cache would not see an edit of the user's functions)."""
    if functions is None:
        return _instantiate(_run_objective_template, rule, lanes=lanes, dim=dim, nogil=True)
    value, grad = functions
    own = all(fn.py_func.__module__ == "rmsnum.classics" for fn in functions)
    name = value.py_func.__name__ if own else f"{value.py_func.__name__}_{id(value):x}"
    return _instantiate(_run_objective_template, rule, lanes=lanes, dim=dim, nogil=True, cache=own,
                        evaluate=rebind(_objective_value, VALUE=value, GRAD=grad), objective=f"__{name}")


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
_PIECES_PER_THREAD = 4  # more pieces than threads: a thread whose blocks diverge early takes another
_BLOCKS_PER_PIECE = 4  # fewer blocks: one piece per thread (each piece types its arguments, ~0.1 ms, GIL held)


def _over_blocks(nblocks: int, run: Callable[[int, int], None]) -> None:
    """Call ``run(lo, hi)`` on contiguous ranges of the ``nblocks`` blocks, on
    ``numba.get_num_threads()`` threads (one call when that is 1 or there is one
    block). ``run`` calls a serial kernel that releases the GIL on those blocks;
    blocks are independent, so the split never changes a number."""
    threads = 1 if nblocks <= 1 else min(numba.get_num_threads(), nblocks)
    if threads == 1:
        run(0, nblocks)
        return
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="rmsnum-blocks")
    pieces = max(threads, min(_PIECES_PER_THREAD * threads, nblocks // _BLOCKS_PER_PIECE))
    edges = [nblocks * k // pieces for k in range(pieces + 1)]
    for future in [pool.submit(run, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]:
        future.result()


def _blockwise(kernel: Callable, args: tuple, blocked: tuple[int, ...]) -> Callable[[], None]:
    """A function that runs ``kernel(*args)`` through :func:`_over_blocks`: the
    arguments at the positions ``blocked`` have a leading block axis (arrays or
    tuples of arrays) and are cut into the ranges; the others are shared.
    ``kernel`` is a dispatcher (which types the arguments of each range, in C)
    or a compiled entry point for these argument types."""
    nblocks = args[blocked[0]].shape[0]

    def run(lo: int, hi: int) -> None:
        kernel(*(_rows(arg, lo, hi) if k in blocked else arg for k, arg in enumerate(args)))
    return lambda: _over_blocks(nblocks, run)


def _rows(arg, lo: int, hi: int):
    """Blocks ``lo:hi`` of a blocked argument (an array, a tuple of them, or None)."""
    if arg is None:
        return None
    if isinstance(arg, tuple):
        return tuple(_rows(item, lo, hi) for item in arg)
    return arg[lo:hi]


def _flat(arr):
    return None if arr is None else arr.reshape(-1)


_STEP_ENTRIES: dict[tuple, Callable] = {}


def _type_key(value) -> object:
    """What decides a scalar argument's Numba type: the neutral itself, or the scalar's class."""
    return repr(value) if isinstance(value, Neutral) else type(value)


def squares(g: np.ndarray) -> np.floating:
    """The sum of the squares of ``g``'s elements, in its dtype (a C-contiguous array)."""
    flat = g.reshape(-1)
    return g.dtype.type(np.dot(flat, flat))


def step(rule: Callable, x: np.ndarray, g: np.ndarray, S: tuple, r1, r2, c: tuple, *, hyper: Any = None,
         t: int = 0) -> None:
    """One in-place update of C-contiguous arrays of x's dtype and shape (checked by the
    caller): in parallel from :data:`PARALLEL_THRESHOLD` elements on, under a thread-safe layer.
    ``hyper`` and ``t`` are for the reference (the coefficients ``c`` say it all)."""
    parallel = x.size >= PARALLEL_THRESHOLD and thread_safe_layer()
    flat = (x.reshape(-1), g.reshape(-1), *(_flat(arr) for arr in S))
    args = (flat[0], flat[1], flat[2:], r1, r2, c)
    # The dispatcher would type all arguments on every call (~70 us for the coefficient
    # tuple, more than the update of thousands of elements): keep each compiled entry
    # point under a key made of what decides the argument types.
    key = (rule, parallel, x.dtype, *(None if arr is None else (arr.flags.writeable, arr.flags.aligned) for arr in flat),
           _type_key(r1), _type_key(r2), tuple(_type_key(value) for value in c))
    entry = _STEP_ENTRIES.get(key)
    if entry is None:
        k = kernels_for(rule)
        kernel = k.step_parallel if parallel else k.step_serial
        entry = _STEP_ENTRIES[key] = kernel.compile(tuple(numba.typeof(arg) for arg in args))
    entry(*args)


def coefficient_table(rows: list[tuple], dtype: np.dtype) -> tuple[np.ndarray, tuple]:
    """``(C, like)`` from one coefficient tuple per configuration (or per step):
    ``like`` keeps ZERO or ONE where every tuple has that same neutral and a
    number elsewhere, and ``C`` (k, len(rows)) holds the k coefficients that are
    numbers in ``like`` (a neutral counts as its value where others are numbers)."""
    dt = np.dtype(dtype).type

    def common(column: tuple) -> object:
        first = column[0]
        if isinstance(first, Neutral) and all(c is first for c in column):
            return first
        return dt(float(next(c for c in column if not isinstance(c, Neutral))))

    like = tuple(common(column) for column in zip(*rows))
    numeric = [k for k, c in enumerate(like) if not isinstance(c, Neutral)]
    C = np.empty((len(numeric), len(rows)), dtype)
    for j, row in enumerate(rows):
        C[:, j] = [float(row[k]) for k in numeric]
    return C, like


def _numbers_only(rule: Callable, C: np.ndarray, like: tuple) -> tuple[np.ndarray, tuple]:
    """``(C, like)`` for a single run: each neutral of ``like`` becomes a number,
    a row of ``C`` (its coefficient axis is the last but one) holding its value,
    except those of the rule's ``specialised`` coefficients. The kernel of a
    single configuration is then one per rule, slot pattern, dtype and the few
    options that are rarely on (maximize, a rescaled or clipped gradient, clipped
    weights), not one per option pattern: a single run has no lanes to
    vectorise, and the few extra operations (``+ 0``, ``* 1``) are exact, so the
    numbers are those of the specialised kernel (up to the sign of a zero)."""
    keep = rules.lookup(rule).specialised
    names = rules.lookup(rule).coefficients
    numbered = [isinstance(item, Neutral) and name not in keep for item, name in zip(like, names)]
    if not any(numbered):
        return C, like
    number = C.dtype.type
    rows, k = [], 0
    for item, to_number in zip(like, numbered):
        if to_number:
            rows.append(np.full(C.shape[:-2] + (1, C.shape[-1]), float(item), C.dtype))
        elif not isinstance(item, Neutral):
            rows.append(C[..., k:k + 1, :])
            k += 1
    return (np.ascontiguousarray(np.concatenate(rows, axis=-2)),
            tuple(number(0) if to_number else item for item, to_number in zip(like, numbered)))


def _unrolled_dim(n: int, lanes: int) -> int:
    """The DIM a kernel is compiled with: ``n`` for blocks of many lanes and
    ``n`` <= :data:`MAX_UNROLLED_DIM` (the coordinate loops unroll inside the
    lane loops, which LLVM then vectorises), else 0 (any dimension). A single
    lane has no lane loop to vectorise, so single runs of every dimension share
    one kernel."""
    return n if lanes > 1 and n <= MAX_UNROLLED_DIM else 0


def run_objective(rule: Callable, functions: tuple | None, x: np.ndarray, S: tuple, d, dec, C: np.ndarray, like: tuple,
                  P: tuple, sigma, seeds, fstar, tol, steps: int, every: int, loss_rec, x_rec,
                  final_loss: np.ndarray, diverged: np.ndarray, hit, *, hyper: Any = None,
                  queue: Any = None) -> Callable[[], None]:
    """Run blocks of configurations on an objective; see :func:`_run_objective_template`.
    The run is finished on return, which returns a ``wait`` with nothing to wait for
    (``hyper`` and ``queue`` are for the reference and the GPU).

    ``functions`` is None for a quadratic, with ``P = (A, b)``, or the
    ``(value, grad)`` functions of a user objective compiled for the CPU, with
    ``P`` a placeholder and then the objective's extra arguments.
    Every array is C-contiguous in the working dtype (checked by the caller).
    ``C`` is (blocks, T, k, w) with one row of coefficients per update, or
    (blocks, k, w) for the same coefficients at every update. ``loss_rec``,
    ``x_rec`` and ``hit`` may be None: nothing recorded (the kernel gets
    zero-length arrays, so one kernel serves every record mode). Blocks have
    one lane (a single trajectory) or :data:`LANES`; they run in parallel
    through :func:`_over_blocks`.
    """
    dt = x.dtype.type
    blocks, n, w = x.shape
    if w not in (1, LANES):
        raise ValueError(f"blocks must have 1 or {LANES} lanes, got {w}")
    if C.ndim == 3:
        C = C[:, np.newaxis]
    if w == 1:
        C, like = _numbers_only(rule, C, like)
    loss_rec = np.empty((blocks, 0, w), x.dtype) if loss_rec is None else loss_rec
    x_rec = np.empty((blocks, 0, n, w), x.dtype) if x_rec is None else x_rec
    hit = np.empty((blocks, 0, w), np.int64) if hit is None else hit
    kernel = _run_objective_kernel(rule, w, _unrolled_dim(n, w), functions)
    args = (x, S, d, dec, C, like, P, dt(1), dt(0.5), dt(sigma), seeds, dt(fstar), tol, steps, every,
            loss_rec, x_rec, final_loss, diverged, hit)
    _blockwise(kernel, args, (0, 1, 2, 3, 4, 10, 15, 16, 17, 18, 19))()
    return done


def train(rule: Callable, p: np.ndarray, S: tuple, d, dec, C: np.ndarray, like: tuple, X: np.ndarray, y: np.ndarray,
          order: np.ndarray, batch: int, every: int, H: np.ndarray, pstar: np.ndarray, fstar: float, loss_rec,
          final_loss: np.ndarray, diverged: np.ndarray, *, count: int | None = None, hyper: Any = None,
          queue: Any = None) -> Callable[[], Callable[[], None]]:
    """Train blocks of configurations on a linear regression; see :func:`_train_template`.

    Every array is C-contiguous, in the working dtype except ``order`` (int64)
    and ``H``, ``pstar``, ``loss_rec``, ``final_loss`` (float64), all checked by
    the caller. Returns ``run``, which runs the kernel, compiled beforehand (so
    that callers can time the training alone), and returns a ``wait`` with
    nothing to wait for. All blocks are trained (``count`` is for the GPU,
    ``hyper`` for the reference).
    """
    dt = p.dtype.type
    if p.shape[2] not in (1, LANES):
        raise ValueError(f"blocks must have 1 or {LANES} lanes, got {p.shape[2]}")
    if p.shape[2] == 1:
        C, like = _numbers_only(rule, C, like)
    kernel = _train_kernel(rule, p.shape[2], _unrolled_dim(p.shape[1], p.shape[2]))
    rows = order.shape[1]
    args = (p, S, d, dec, C, like, X, y, order, batch, every, dt(batch), dt(rows - (-(-rows // batch) - 1) * batch),
            dt(1), H, pstar, float(fstar), loss_rec, final_loss, diverged)
    # The compiled entry point skips the dispatcher's typing of the 20
    # arguments (~80 us), which would cost more than the chapter's whole run.
    entry = kernel.compile(tuple(numba.typeof(arg) for arg in args))
    blockwise = _blockwise(entry, args, (0, 1, 2, 3, 4, 17, 18, 19))

    def run() -> Callable[[], None]:
        blockwise()
        return done
    return run
