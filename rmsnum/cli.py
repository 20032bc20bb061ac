"""The ``rmsnum`` command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

CHAPTER = dict(lr=0.4, gamma=0.9, x0=(-5.0, -2.0), steps=20)


def demo(out: Path) -> list[str]:
    """Reproduce the chapter's 2-D experiments; write PNGs into ``out``; return the summary lines."""
    from matplotlib.figure import Figure

    from . import RMSProp, plot, quadratic_2d, rotated_quadratic_2d, simulate

    out.mkdir(parents=True, exist_ok=True)
    lines = []

    def save(fig: Figure, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=120, bbox_inches="tight")
        lines.append(f"  wrote {path}")

    fig = Figure(figsize=(6, 4))
    plot.weights(ax=fig.subplots())
    save(fig, "weights.png")

    opt = RMSProp(lr=CHAPTER["lr"], gamma=CHAPTER["gamma"])
    for objective, name in ((quadratic_2d(), "rmsprop_2d.png"), (rotated_quadratic_2d(), "rmsprop_rotated.png")):
        traj = simulate(opt, objective, CHAPTER["x0"], CHAPTER["steps"])
        lines.append(f"{objective.name}:")
        lines.append(f"  epoch {traj.steps}, x1: {traj.x[-1, 0]:f}, x2: {traj.x[-1, 1]:f}")
        fig = Figure(figsize=(6, 4))
        plot.trace_2d(traj, ax=fig.subplots())
        save(fig, name)

    gamma_one = simulate(RMSProp(lr=CHAPTER["lr"], gamma=1.0), quadratic_2d(), CHAPTER["x0"], 200)
    eta_over_sqrt_eps = CHAPTER["lr"] / np.sqrt(gamma_one.optimizer.eps)
    lines.append("exercise 1, gamma = 1: s stays at its initial 0, steps are lr/sqrt(eps) * g "
                 f"= {eta_over_sqrt_eps:g} * g;")
    lines.append(f"  diverged at step {gamma_one.diverged_at} (max s = {np.max(gamma_one.state.s):g})"
                 if gamma_one.diverged else "  did not diverge")
    fig = Figure(figsize=(6, 4))
    plot.loss_curve(gamma_one, ax=fig.subplots(), label="gamma = 1")
    save(fig, "gamma_one.png")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmsnum`` console script."""
    parser = argparse.ArgumentParser(prog="rmsnum", description="RMSProp-family optimizers, studied numerically.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="reproduce the chapter's 2-D experiments as PNG figures")
    p_demo.add_argument("--out", type=Path, default=Path("rmsnum-demo"), help="output folder (default ./rmsnum-demo)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    lines = demo(args.out)
    print("rmsnum demo: the RMSProp chapter of Dive into Deep Learning, reproduced")
    print("\n".join(lines))
    print(f"done in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
