"""The rules inside your own @numba.cuda.jit kernel.

Run on a GPU: python examples/cuda_kernel.py
Without one, under Numba's CUDA simulator: NUMBA_ENABLE_CUDASIM=1 python examples/cuda_kernel.py
"""

import numba
import numpy as np
from numba import cuda

import rmsnum as rn
from rmsnum import kernels as rk


@cuda.jit
def chapter_step(x, g, s, lr, gamma, eps):
    i = cuda.grid(1)
    if i < x.size:
        x[i], s[i] = rk.rmsprop_update(x[i], g[i], s[i], lr, gamma, eps)


def main(n: int = 1000, steps: int = 5, dtype: type = np.float32) -> None:
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(n).astype(dtype)
    h = np.linspace(0.1, 4.0, n).astype(dtype)
    x, s = cuda.to_device(x0), cuda.to_device(np.zeros(n, dtype))
    threads = 128
    blocks = (n + threads - 1) // threads
    for _ in range(steps):
        g = cuda.to_device(h * x.copy_to_host())  # the gradient of sum h x^2 / 2
        chapter_step[blocks, threads](x, g, s, dtype(0.4), dtype(0.9), dtype(1e-6))

    # The same steps with rmsnum's own step, on the CPU.
    opt, y = rn.RMSProp(lr=0.4, gamma=0.9, eps=1e-6), x0.copy()
    state = opt.init(y)
    for _ in range(steps):
        opt.step(y, h * y, state)
    diff = np.abs(x.copy_to_host() - y).max()
    print(f"{n} coordinates, {steps} steps on {'the simulator' if numba.config.ENABLE_CUDASIM else 'the GPU'}: "
          f"max |x_gpu - x_cpu| = {diff:.2e}")
    assert diff <= 1e-5 * np.abs(y).max()


if __name__ == "__main__":
    main()
