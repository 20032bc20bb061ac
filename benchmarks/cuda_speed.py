"""GPU speed of rmsnum's CUDA backend, against baselines measured in the same run.

Run from the repository root on a machine with an NVIDIA GPU and
``pip install "rmsnum[cuda]"`` (PyTorch for the comparison)::

    python benchmarks/cuda_speed.py            # full sizes (about a minute on an H200)
    python benchmarks/cuda_speed.py --quick    # 10x smaller

Two measurements, each a median over repetitions timed with CUDA events (or
wall-clock around a synchronised call):

Step
    ``RMSProp(lr=0.01).step(x, g, state)`` on 10**8 float32 elements: it reads
    x, g, s and writes x, s (5 x 4 bytes per element). Baseline: a
    device-to-device copy (cudaMemcpy) of the same number of bytes (2.5 x 10**8
    float32 read and written), so the ratio is the step's effective bandwidth
    as a fraction of the copy's. Target >= 0.85.
Sweep
    The chapter's RMSProp (eps = 1e-6 inside the square root) on its 2-D
    quadratic from (-5, -2), 1000 steps, on a grid lr x gamma of about 10**7
    configurations, float32 and float64. rmsnum: ``rn.sweep(...,
    backend="cuda")`` end to end (host-side planning and packing included),
    and its kernel alone on pre-packed device arrays. Baseline: PyTorch on the
    same GPU, vectorised over configurations (one tensor per quantity, a Python
    loop over steps, the same gradient/loss/finiteness/update work per step).
    Reported as configuration-steps per second and rmsnum/PyTorch ratios;
    targets >= 10x in float32 and >= 5x in float64. The two agree on the
    divergence map and within rounding on the final iterates (checked).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import cuda

import rmsnum as rn
from rmsnum.backends import cpu
from rmsnum.backends import cuda as cuda_backend


def _event_time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` (which only enqueues work) between CUDA events."""
    fn()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(max(start.elapsed_time(stop), 1e-6) / 1e3)  # (the simulator reports 0)
    return statistics.median(times)


def _wall_time(fn, repeats: int) -> tuple[float, object]:
    result = None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_step(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    d_x = cuda.to_device(rng.standard_normal(n, dtype=np.float32))
    d_g = cuda.to_device(rng.standard_normal(n, dtype=np.float32))
    opt = rn.RMSProp(lr=0.01)
    state = opt.init(d_x)
    step = _event_time(lambda: opt.step(d_x, d_g, state), repeats)
    copy_elems = 5 * n // 2  # read + write of 2.5n floats = the step's 5n floats of traffic
    src = cuda.device_array(copy_elems, np.float32)
    dst = cuda.device_array(copy_elems, np.float32)
    copy = _event_time(lambda: dst.copy_to_device(src), repeats)
    traffic = 5 * 4 * n
    print(f"step, {n:.0e} float32: {step * 1e3:.3f} ms ({traffic / step / 1e9:.0f} GB/s); "
          f"device copy of the same bytes {copy * 1e3:.3f} ms ({traffic / copy / 1e9:.0f} GB/s); "
          f"step bandwidth / copy bandwidth = {copy / step:.3f} (target >= 0.85)")


def _grid(configs: int) -> dict[str, np.ndarray]:
    side = int(round(configs ** 0.5))
    return {"lr": np.logspace(-3, 0, side), "gamma": np.linspace(0.5, 0.999, side)}


def _torch_sweep(torch, grid, steps: int, dtype: str, device: str = "cuda"):
    """PyTorch, vectorised over configurations: the same work as the kernel."""
    tdt = getattr(torch, dtype)
    lr, gamma = (torch.tensor(v, dtype=tdt, device=device) for v in np.meshgrid(grid["lr"], grid["gamma"],
                                                                                 indexing="ij"))
    lr, gamma = lr.reshape(-1), gamma.reshape(-1)
    omg = 1 - gamma
    a1, a2, eps = 0.2, 4.0, 1e-6
    x1 = torch.full_like(lr, -5.0)
    x2 = torch.full_like(lr, -2.0)
    s1, s2 = torch.zeros_like(lr), torch.zeros_like(lr)
    diverged = torch.full(lr.shape, -1, dtype=torch.int64, device=device)
    for t in range(steps + 1):
        g1, g2 = a1 * x1, a2 * x2
        loss = 0.5 * (x1 * g1 + x2 * g2)
        bad = ~torch.isfinite(loss) & (diverged < 0)
        diverged = torch.where(bad, t, diverged)
        if t == steps:
            break
        s1 = gamma * s1 + omg * (g1 * g1)
        s2 = gamma * s2 + omg * (g2 * g2)
        x1 = x1 - (lr * g1) / torch.sqrt(s1 + eps)
        x2 = x2 - (lr * g2) / torch.sqrt(s2 + eps)
    if device == "cuda":
        torch.cuda.synchronize()
    return x1.cpu().numpy(), x2.cpu().numpy(), diverged.cpu().numpy()


def _kernel_only(grid, steps: int, dtype: str) -> float:
    """Seconds of the sweep kernel alone on device arrays packed beforehand (one launch)."""
    dt = np.dtype(dtype)
    lr, gamma = (v.reshape(-1) for v in np.meshgrid(grid["lr"], grid["gamma"], indexing="ij"))
    count = lr.size
    w = cpu.LANES
    nb = -(-count // w)
    pad = nb * w - count
    opt = rn.RMSProp(lr=1.0, gamma=0.9)
    like = opt.coefficients(dt)
    columns = {"gamma": gamma, "omg": 1 - gamma, "eps_in": np.full(count, 1e-6), "c_in": lr}
    numeric = [name for name, c in zip(rn.rules.RMSPROP_COEFFICIENTS, like)
               if not isinstance(c, rn._neutral.Neutral)]

    def blocked(col):
        col = np.concatenate([col, np.repeat(col[-1:], pad, axis=0)])
        return np.ascontiguousarray(np.moveaxis(col.reshape((nb, w) + col.shape[1:]), 1, -1))

    C = blocked(np.stack([columns[name] for name in numeric], axis=1).astype(dt))
    x = blocked(np.tile(np.array([-5.0, -2.0], dt), (count, 1)))
    dev = dict(x=cuda.to_device(x), s=cuda.to_device(np.zeros_like(x)), C=cuda.to_device(C),
               A=cuda.to_device(np.array([0.2, 4.0], dt)), b=cuda.to_device(np.zeros(2, dt)),
               tol=cuda.to_device(np.zeros(0, dt)), final=cuda.device_array((nb, w), dt),
               div=cuda.device_array((nb, w), np.int64))
    kernel = cuda_backend._run_objective_kernel(opt.rule, cuda_backend._pattern(like), 2, dt)
    threads = cuda_backend.THREADS_PER_BLOCK
    one = dt.type

    def launch():
        kernel[-(-nb * w // threads), threads](dev["x"], dev["s"], None, None, None, None, dev["C"],
                                               (dev["A"], dev["b"]), one(1), one(0.5), one(0), None, one(0), dev["tol"],
                                               steps, 1, None, None, dev["final"], dev["div"], None)
    return _event_time(launch, 3)


def bench_sweep(configs: int, steps: int, repeats: int) -> None:
    try:
        import torch
    except ImportError:
        torch = None
    for dtype in ("float32", "float64"):
        grid = _grid(configs)
        count = grid["lr"].size * grid["gamma"].size
        work = count * steps
        rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 5, {k: v[:4] for k, v in grid.items()},
                 fixed={"eps": 1e-6}, backend="cuda", dtype=dtype, progress=False)  # compile
        t_rn, res = _wall_time(lambda: rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), steps, grid,
                                                fixed={"eps": 1e-6}, backend="cuda", dtype=dtype,
                                                progress=False), repeats)
        t_kernel = _kernel_only(grid, steps, dtype)
        line = (f"sweep {dtype}, {count:.2e} configs x {steps} steps: rn.sweep {work / t_rn:.3e} config-steps/s "
                f"({t_rn:.3f} s), kernel alone {work / t_kernel:.3e} ({t_kernel:.3f} s)")
        if torch is not None and torch.cuda.is_available():
            _torch_sweep(torch, {k: v[:4] for k, v in grid.items()}, 5, dtype)  # warm-up
            t_torch, (x1, x2, div) = _wall_time(lambda: _torch_sweep(torch, grid, steps, dtype), repeats)
            target = 10 if dtype == "float32" else 5
            line += (f"; PyTorch {work / t_torch:.3e} ({t_torch:.3f} s); rmsnum/PyTorch end to end "
                     f"{t_torch / t_rn:.1f}x, kernel {t_torch / t_kernel:.1f}x (target >= {target}x)")
            same_map = np.array_equal(div.reshape(res.shape), res.diverged_at)
            ok = res.diverged_at < 0
            scale = np.abs(res.final_x[ok]).max()
            worst = max(np.abs(x1.reshape(res.shape)[ok] - res.final_x[..., 0][ok]).max(),
                        np.abs(x2.reshape(res.shape)[ok] - res.final_x[..., 1][ok]).max()) / scale
            line += f"; same divergence map: {same_map}, max |dx| / max |x| = {worst:.1e}"
        else:
            line += "; PyTorch with CUDA not available: no baseline"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller problems")
    parser.add_argument("--scale", type=int, default=1, help="divide the problem sizes by this (smoke tests)")
    args = parser.parse_args()
    cuda_backend.require()
    scale = args.scale * (10 if args.quick else 1)
    name = cuda.get_current_device().name if hasattr(cuda, "get_current_device") else "CUDA simulator"
    print(f"device: {name.decode() if isinstance(name, bytes) else name}")
    bench_step(max(10**8 // scale, 64), repeats=20 if scale == 1 else 2)
    bench_sweep(max(10**7 // scale, 16), 1000 if scale <= 10 else 20, repeats=3 if scale == 1 else 1)


if __name__ == "__main__":
    main()
