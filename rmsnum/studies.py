"""The chapter's four exercises as reproducible studies.

Each study is one function that runs its experiment, returns the numbers in
``Study.data`` and a ``Study.figure``, and states its findings in words with
those numbers. The defaults are sized for a report on 2 cores (seconds each);
pass larger grids for a paper.

1. :func:`gamma_one`: what happens with gamma = 1.
2. :func:`rotation`: the rotated objective, over a sweep of rotation angles.
3. :func:`real_problem`: an RMSProp learning-rate sweep on the airfoil regression
   (and, given a local copy, softmax regression on Fashion-MNIST).
4. :func:`gamma_schedules`: gamma and lr as per-step schedules, and the
   sensitivity of the final loss to gamma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validation as v
from . import analysis, plot
from .data import RegressionData, load_airfoil, synthetic_regression
from .objectives import LinearRegression, quadratic_2d
from .optimizers import SGD, RMSProp
from .simulate import simulate
from .sweep import sweep
from .training import train, train_sweep

CHAPTER_X0 = (-5.0, -2.0)
"""The chapter's starting point on f = 0.1 x1^2 + 2 x2^2."""


@dataclass(eq=False)
class Study:
    """One exercise's results.

    Attributes
    ----------
    name : str
        Short identifier, also the figure's file name.
    title : str
    findings : list of str
        What the numbers show, one sentence each, with the numbers.
    data : dict
        The measured numbers (arrays and scalars) behind the findings and the figure.
    figure : matplotlib.figure.Figure
    """

    name: str
    title: str
    findings: list[str]
    data: dict[str, Any]
    figure: Any = field(repr=False)

    def save_figure(self, folder: str | Path, dpi: int = 120) -> Path:
        """Write the figure as ``<folder>/<name>.png`` and return the path."""
        path = Path(folder) / f"{self.name}.png"
        self.figure.savefig(path, dpi=dpi, bbox_inches="tight")
        return path


def _figure(panels: int, width: float = 5.2, height: float = 3.9) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def _rotation_matrix(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


# --- exercise 1 ---------------------------------------------------------------------------------------------------


def gamma_one(lr: float = 0.4, eps: float = 1e-6, steps: int = 100) -> Study:
    """Exercise 1: set gamma = 1. What happens, and why?

    With gamma = 1 the update ``s <- gamma s + (1 - gamma) g^2`` keeps ``s`` at its
    initial value forever. From the chapter's ``s = 0`` the denominator is
    ``sqrt(eps)`` and every step is gradient descent with step
    ``lr / sqrt(eps)`` (400 for the chapter's lr 0.4): each coordinate is
    multiplied by ``1 - lr h / sqrt(eps)`` (-79 and -1599 for h = 0.2 and 4)
    per step and the run overflows. Starting from ``s = 1`` instead (TF1's
    convention), the step freezes at ``lr / sqrt(1 + eps)`` and the same
    run converges as gradient descent.

    Data: ``diverged_at`` and its prediction, the measured and predicted
    growth factor per coordinate, the largest ``s`` seen, and the final gap
    of the run from ``s = 1``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> study = gamma_one()
    >>> study.data["diverged_at"], study.data["predicted_diverged_at"]
    (48, 48)
    >>> study.data["growth"], study.data["predicted_growth"]
    (array([  -79., -1599.]), array([  -79., -1599.]))
    """
    lr = v.real("lr", lr, low=0.0, low_open=True)
    eps = v.real("eps", eps, low=0.0, low_open=True)
    steps = v.integer("steps", steps, low=2)
    q = quadratic_2d()
    h = q.curvatures
    frozen = simulate(RMSProp(lr=lr, gamma=1.0, eps=eps), q, CHAPTER_X0, steps)
    warm = simulate(RMSProp(lr=lr, gamma=1.0, eps=eps, initial_s=1.0), q, CHAPTER_X0, steps)
    leaky = simulate(RMSProp(lr=lr, gamma=0.9, eps=eps), q, CHAPTER_X0, steps)
    predicted_growth = 1 - lr * h / math.sqrt(eps)
    growth = frozen.x[1] / frozen.x[0]
    # f(x0 * growth^t) overflows when its largest term does: solve in logarithms.
    log_terms = np.log(0.5 * h * np.square(CHAPTER_X0))[:, None] + 2 * np.log(np.abs(predicted_growth))[:, None] * np.arange(steps + 1)
    overflow = np.logaddexp.reduce(log_terms, axis=0) > math.log(np.finfo(np.float64).max)
    predicted_at = int(np.argmax(overflow)) if overflow.any() else None
    max_s = max(float(np.max(frozen.state.s)), 0.0)
    data = {"h": h, "growth": growth, "predicted_growth": predicted_growth, "diverged_at": frozen.diverged_at,
            "predicted_diverged_at": predicted_at, "max_s": max_s, "warm_final_gap": float(warm.gap[-1]),
            "warm_step": lr / math.sqrt(1 + eps), "leaky_final_gap": float(leaky.gap[-1]),
            "trajectories": {"s0 = 0": frozen, "s0 = 1": warm, "gamma = 0.9": leaky}}

    fig, (left, right) = _figure(2)
    for (label, traj), style in zip(data["trajectories"].items(), ("-", "--", ":")):
        plot.loss_curve(traj, ax=left, label=label)
        left.lines[-1].set_linestyle(style)
    left.set_title(f"RMSProp, lr {lr:g}, gamma = 1 (and 0.9 for reference)", loc="left")
    t = np.arange(frozen.steps + 1)
    for i, marker in zip(range(2), ("o", "s")):
        with np.errstate(divide="ignore"):
            right.plot(t, np.log10(np.abs(frozen.x[:, i].astype(np.float64))), marker, markersize=3, linestyle="none",
                       label=f"|x{i + 1}|, measured")
        right.plot(t, np.log10(abs(CHAPTER_X0[i])) + t * np.log10(abs(predicted_growth[i])), "-", color="0.3",
                   linewidth=0.8, label=f"|1 - lr h / sqrt(eps)|^t, h = {h[i]:g}" if i == 0 else f"h = {h[i]:g}")
    right.set_xlim(0, (frozen.diverged_at or steps) + 2)
    right.set_xlabel("step")
    right.set_ylabel("log10 |x_i|")
    right.set_title("s stays 0: the step is lr / sqrt(eps) every time", loc="left")
    right.legend(fontsize="small")

    findings = [
        f"With gamma = 1, s never leaves its initial value (largest s seen: {max_s:g}), so the step stays "
        f"lr / sqrt(eps) = {lr / math.sqrt(eps):g} times the gradient.",
        f"Each coordinate is multiplied by 1 - lr h / sqrt(eps) per step: measured {growth[0]:g} and {growth[1]:g}, "
        f"predicted {predicted_growth[0]:g} and {predicted_growth[1]:g}.",
        f"The loss overflows at step {frozen.diverged_at} (predicted {predicted_at}).",
        f"Starting from s = 1 instead, the step freezes at lr / sqrt(1 + eps) = {data['warm_step']:.4g} and the run "
        f"converges like gradient descent (gap {data['warm_final_gap']:.3g} after {steps} steps).",
    ]
    return Study("gamma_one", "Exercise 1: gamma = 1", findings, data, fig)


# --- exercise 2 ---------------------------------------------------------------------------------------------------


def rotation(angles: Any = None, lrs: Any = None, steps: int = 2000, tol: float = 1e-4) -> Study:
    """Exercise 2: the rotated objective, over a sweep of rotation angles.

    For each angle the chapter's quadratic (curvatures 0.2 and 4) is rotated
    by it, and so is the starting point, so that only the alignment of the
    curvature directions with the coordinate axes changes. For each angle,
    RMSProp and (as a rotation-invariant control) gradient descent are swept
    over ``lrs``; the data are the fewest steps to ``f - f* < tol`` over the
    learning rates (tuned per angle) and the final gap at each lr.

    RMSProp scales each coordinate by its own ``1 / sqrt(s_i)``: a diagonal
    preconditioner, which can only follow curvature directions that are
    coordinate axes. Its advantage shrinks as the angle goes from 0 to 45
    degrees and returns at 90 degrees (axes swapped), while gradient descent
    does not see the rotation at all.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> study = rotation(angles=[0.0, math.pi / 4], steps=500)
    >>> best = study.data["best_steps"]
    >>> bool(best["RMSProp"][0] < best["RMSProp"][1]), bool(best["SGD"][0] == best["SGD"][1])
    (True, True)
    """
    angles = np.linspace(0.0, math.pi / 2, 13) if angles is None else np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1 or angles.size == 0 or not np.all(np.isfinite(angles)):
        raise ValueError(f"angles must be a non-empty 1-D sequence of finite angles in radians, got {angles!r}")
    lrs = np.geomspace(1e-3, 1.0, 25) if lrs is None else np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(lrs > 0):
        raise ValueError(f"lrs must be a non-empty 1-D sequence of learning rates > 0, got {lrs!r}")
    steps = v.integer("steps", steps, low=1)
    tol = v.real("tol", tol, low=0.0, low_open=True)
    base = quadratic_2d()
    best: dict[str, np.ndarray] = {}
    best_lr: dict[str, np.ndarray] = {}
    final_gap: dict[str, np.ndarray] = {}
    for factory in (RMSProp, SGD):
        name = factory.__name__
        best[name] = np.full(angles.size, -1, np.int64)
        best_lr[name] = np.full(angles.size, np.nan)
        final_gap[name] = np.empty((angles.size, lrs.size))
        for k, angle in enumerate(angles):
            x0 = _rotation_matrix(angle) @ np.array(CHAPTER_X0)
            res = sweep(factory, base.rotated(angle), x0=x0, steps=steps, grid={"lr": lrs}, tol=[tol], progress=False)
            reached = res.steps_to_tol[:, 0]
            if np.any(reached >= 0):
                j = int(np.argmin(np.where(reached >= 0, reached, np.iinfo(np.int64).max)))
                best[name][k], best_lr[name][k] = reached[j], lrs[j]
            final_gap[name][k] = np.where(res.diverged, np.inf, res.gap)
    degrees = np.degrees(angles)
    data = {"angles": angles, "degrees": degrees, "lrs": lrs, "tol": tol, "steps": steps, "best_steps": best,
            "best_lr": best_lr, "final_gap": final_gap}

    fig, (left, right) = _figure(2)
    for name, marker in (("RMSProp", "o-"), ("SGD", "s--")):
        shown = np.where(best[name] >= 0, best[name], np.nan).astype(np.float64)
        left.plot(degrees, shown, marker, label=f"{name}, best lr per angle")
    left.set_xlabel("rotation angle (degrees)")
    left.set_ylabel(f"steps to f - f* < {tol:g}")
    left.set_xticks(np.arange(0, 91, 15) if degrees.max() <= 90 else left.get_xticks())
    left.set_title("Fewest steps over the learning rates", loc="left")
    left.legend()
    chosen = sorted({0, int(np.argmin(np.abs(degrees - 45.0)))})
    for k, style in zip(chosen, ("-", "--")):
        with np.errstate(divide="ignore"):
            right.plot(lrs, np.log10(final_gap["RMSProp"][k]), style, label=f"RMSProp, {degrees[k]:.0f} degrees")
    right.set_xscale("log")
    right.set_xlabel("learning rate")
    right.set_ylabel(f"log10(f - f*) after {steps} steps")
    right.set_title("Where constant-lr RMSProp ends (its orbit)", loc="left")
    right.legend()

    k45 = int(np.argmin(np.abs(degrees - 45.0)))
    rms, gd = best["RMSProp"], best["SGD"]
    findings = [
        f"Axis-aligned (0 degrees), tuned RMSProp reaches f - f* < {tol:g} in {rms[0]} steps (lr {best_lr['RMSProp'][0]:.3g}); "
        f"rotated by {degrees[k45]:.0f} degrees it needs {rms[k45]} (lr {best_lr['RMSProp'][k45]:.3g}).",
        f"Gradient descent needs {_span(gd)} steps at every angle: it is rotation-invariant, so the "
        "difference is RMSProp's diagonal preconditioner, which cannot align with rotated curvature directions.",
        "At 90 degrees the axes are swapped and aligned again: "
        + (f"{rms[-1]} steps, as at 0 degrees." if degrees[-1] == 90 else "outside the angles run."),
    ]
    return Study("rotation", "Exercise 2: the rotated objective", findings, data, fig)


def _span(values: np.ndarray) -> str:
    return f"{values.min()}" if values.min() == values.max() else f"{values.min()}-{values.max()}"


# --- exercise 3 ---------------------------------------------------------------------------------------------------


def _regression_data(data: Any) -> RegressionData:
    if isinstance(data, RegressionData):
        return data
    if data is not None:
        return load_airfoil(data, download=False)
    try:
        return load_airfoil(download=False)
    except FileNotFoundError:
        return synthetic_regression()


def _short(dataset: RegressionData) -> str:
    return "synthetic data" if dataset.source == "synthetic" else dataset.name.split(" (")[0]


def _described(dataset: RegressionData) -> str:
    if dataset.source == "synthetic":
        return (f"{dataset.name}, a stand-in: no local copy of the airfoil data was found "
                "(pass data=PATH, set RMSNUM_DATA, or rmsnum report --data FILE)")
    return dataset.name


def real_problem(data: Any = None, lrs: Any = None, seeds: int = 5, epochs: int = 2,
                 fashion_mnist: str | Path | None = None, fashion_rows: int = 10_000) -> Study:
    """Exercise 3: RMSProp on a real machine-learning problem.

    A learning-rate sweep of the chapter's RMSProp (gamma 0.9, eps 1e-6,
    batch 10) on the airfoil regression, each lr run with ``seeds`` seeds
    (initial weights and shuffles) in one training sweep. The data: mean and
    range of the final loss per lr, the best lr, and the chapter's lr 0.01.

    With ``fashion_mnist`` (a folder holding the Fashion-MNIST files; never
    downloaded), also softmax regression on its first ``fashion_rows``
    training images for a few learning rates: test accuracy on the t10k set.

    Parameters
    ----------
    data : RegressionData or path, optional
        The airfoil data; by default the local copy (``RMSNUM_DATA``, the user
        cache), else synthetic data of the same shape (the findings say which).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import rmsnum as rn
    >>> study = real_problem(rn.data.synthetic_regression(n=300), lrs=[1e-3, 1e-2, 1e-1], seeds=2)
    >>> study.data["final_loss"].shape
    (3, 2)
    """
    dataset = _regression_data(data)
    lrs = np.geomspace(1e-4, 1.0, 25) if lrs is None else np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(lrs > 0):
        raise ValueError(f"lrs must be a non-empty 1-D sequence of learning rates > 0, got {lrs!r}")
    seeds = v.integer("seeds", seeds, low=1)
    epochs = v.integer("epochs", epochs, low=1)
    problem = LinearRegression(dataset)
    res = train_sweep(RMSProp, problem, batch_size=10, epochs=epochs, grid={"lr": lrs, "seed": np.arange(seeds)},
                      fixed={"gamma": 0.9, "eps": 1e-6}, progress=False)
    final = np.where(res.diverged, np.inf, res.final_loss)
    mean = final.mean(axis=1)
    best = int(np.argmin(mean))
    chapter = train(RMSProp(lr=0.01, gamma=0.9, eps=1e-6), problem, batch_size=10, epochs=epochs, seed=0)
    tuned = train(RMSProp(lr=float(lrs[best]), gamma=0.9, eps=1e-6), problem, batch_size=10, epochs=epochs, seed=0)
    data: dict[str, Any] = {"dataset": dataset.name, "lrs": lrs, "final_loss": final, "mean_loss": mean,
                            "best_lr": float(lrs[best]), "best_loss": float(mean[best]), "f_star": problem.f_star,
                            "chapter_loss": chapter.final_loss, "epochs": epochs, "seeds": seeds}
    fashion = _fashion_mnist(fashion_mnist, fashion_rows) if fashion_mnist is not None else None

    fig, axes = _figure(3 if fashion else 2)
    left, middle = axes[0], axes[1]
    left.plot(lrs, mean - problem.f_star, "o-", label=f"mean of {seeds} seeds")
    left.fill_between(lrs, final.min(axis=1) - problem.f_star, final.max(axis=1) - problem.f_star, alpha=0.25,
                      color="C0", label="range over seeds")
    left.axvline(0.01, color="0.4", linestyle=":", label="the chapter's lr 0.01")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("learning rate")
    left.set_ylabel(f"final loss - least-squares loss, after {epochs} epochs")
    left.set_title(f"RMSProp (gamma 0.9) on {_short(dataset)}", loc="left")
    left.legend(fontsize="small")
    plot.loss_curve(chapter, ax=middle, label="lr 0.01 (the chapter)")
    plot.loss_curve(tuned, ax=middle, label=f"lr {lrs[best]:.3g} (best of the sweep)")
    middle.lines[-1].set_linestyle("--")
    middle.set_title("Loss curves, seed 0", loc="left")
    findings = [
        f"On {_described(dataset)}, the chapter's lr 0.01 ends at loss {chapter.final_loss:.4f} (seed 0; mean over {seeds} "
        f"seeds {mean[np.argmin(np.abs(lrs - 0.01))]:.4f} at lr {lrs[np.argmin(np.abs(lrs - 0.01))]:.3g}); "
        f"the least-squares optimum is {problem.f_star:.4f}.",
        f"The best lr of the sweep is {lrs[best]:.3g} (mean final loss {mean[best]:.4f}); at lr {lrs[0]:.3g} "
        f"the loss is still {mean[0]:.3f} after {epochs} epochs, at lr {lrs[-1]:.3g} it is {mean[-1]:.3f}: "
        "RMSProp's steps are about lr in size whatever the gradient, so a large lr leaves the weights "
        "jumping around the optimum and a small one never gets there.",
    ]
    if fashion:
        data["fashion_mnist"] = fashion
        right = axes[2]
        right.plot(fashion["lrs"], fashion["test_accuracy"], "o-")
        right.set_xscale("log")
        right.set_xlabel("learning rate")
        right.set_ylabel("test accuracy (fraction)")
        right.set_title(f"Softmax regression, Fashion-MNIST ({fashion['rows']} images)", loc="left")
        k = int(np.nanargmax(fashion["test_accuracy"]))
        findings.append(f"On Fashion-MNIST ({fashion['rows']} training images, 1 epoch, batch 64), softmax "
                        f"regression reaches test accuracy {fashion['test_accuracy'][k]:.3f} at lr "
                        f"{fashion['lrs'][k]:.3g}.")
    return Study("real_problem", "Exercise 3: a real machine-learning problem", findings, data, fig)


def _fashion_mnist(path: str | Path, rows: int) -> dict[str, Any]:
    from .classification import SoftmaxRegression, load_fashion_mnist, train_softmax

    rows = v.integer("fashion_rows", rows, low=1)
    train_data = load_fashion_mnist(path, kind="train", limit=rows)
    test_data = load_fashion_mnist(path, kind="t10k")
    problem = SoftmaxRegression(train_data)
    lrs = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    accuracy = np.empty(lrs.size)
    for k, lr in enumerate(lrs):
        run = train_softmax(RMSProp(lr=float(lr), gamma=0.9), problem, batch_size=64, epochs=1, seed=0, test=test_data)
        accuracy[k] = np.nan if run.diverged else run.test_accuracy[-1]
    return {"lrs": lrs, "test_accuracy": accuracy, "rows": train_data.n}


# --- exercise 4 ---------------------------------------------------------------------------------------------------


def gamma_schedules(steps: int = 2000, lr: float = 0.4, data: Any = None, gammas: Any = None, lrs: Any = None) -> Study:
    """Exercise 4: schedules of gamma and lr, and the sensitivity of the final loss to gamma.

    On the chapter's quadratic, four runs of ``steps`` updates from the
    chapter's start:

    - constant lr and gamma: the run ends on the period-2 orbit ``x_i = +-lr/2``;
    - lr decaying as ``lr / sqrt(t + 1)``: the orbit shrinks with the step, the
      gap follows the orbit of the current lr;
    - gamma rising as ``1 - 1/(t + 2)``, which makes ``s`` the plain mean of all
      squared gradients so far: it converges fast while the early gradients
      dominate ``s``, but ``s`` then decays like ``1/t``, the step grows like
      ``sqrt(t)`` and the optimum loses its stability again: bursts, each
      further apart (their steps are in ``data["bursts"]``);
    - both schedules: ``lr_t / sqrt(s_t)`` is then ``lr / sqrt(sum of g^2)``,
      Adagrad's step, which never grows: linear convergence, no bursts.

    The sensitivity map: final loss of the chapter's airfoil training (2
    epochs, batch 10) over a grid of gamma and lr.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import rmsnum as rn
    >>> study = gamma_schedules(steps=1000, data=rn.data.synthetic_regression(n=300),
    ...                         gammas=[0.5, 0.9], lrs=[1e-2, 1e-1])
    >>> study.data["classes"]["constant"], study.data["bursts"]["gamma ramp"], study.data["bursts"]["both"]
    ('orbit', [571], [])
    """
    steps = v.integer("steps", steps, low=10)
    lr = v.real("lr", lr, low=0.0, low_open=True)
    gammas = np.linspace(0.5, 0.999, 20) if gammas is None else np.asarray(gammas, dtype=np.float64)
    lrs = np.geomspace(1e-3, 0.3, 20) if lrs is None else np.asarray(lrs, dtype=np.float64)
    for name, values in (("gammas", gammas), ("lrs", lrs)):
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got {values!r}")
    q = quadratic_2d()
    opt = RMSProp(lr=lr, gamma=0.9)
    decay = lr / np.sqrt(np.arange(steps) + 1)

    def ramp(t: int) -> float:
        return 1 - 1 / (t + 2)

    schedules = {"constant": None, "lr decay": {"lr": decay}, "gamma ramp": {"gamma": ramp},
                 "both": {"lr": decay, "gamma": ramp}}
    runs = {name: simulate(opt, q, CHAPTER_X0, steps, schedule=schedule) for name, schedule in schedules.items()}
    final_lr = float(decay[-1])
    orbit_gap = {name: float(np.sum(q.curvatures * analysis.orbit_amplitude(rate, q.curvatures) ** 2 / 2))
                 for name, rate in (("constant", lr), ("lr decay", final_lr))}
    bursts = {name: _bursts(run.gap) for name, run in runs.items()}
    both_rate = analysis.fit_rate(runs["both"])
    dataset = _regression_data(data)
    problem = LinearRegression(dataset)
    sensitivity = train_sweep(RMSProp, problem, batch_size=10, epochs=2, grid={"gamma": gammas, "lr": lrs},
                              fixed={"eps": 1e-6}, progress=False)
    data_out = {"steps": steps, "lr": lr, "final_gap": {name: float(run.gap[-1]) for name, run in runs.items()},
                "classes": {name: analysis.classify(run) for name, run in runs.items()},
                "bursts": bursts, "both_rate": both_rate, "orbit_gap_theory": orbit_gap, "trajectories": runs, "sensitivity": sensitivity,
                "gammas": gammas, "lrs": lrs}

    fig, (left, middle, right) = _figure(3)
    labels = {"constant": "constant", "lr decay": "lr / sqrt(t + 1)", "gamma ramp": "gamma = 1 - 1/(t + 2)",
              "both": "both"}
    for name, run in runs.items():
        plot.loss_curve(run, ax=left, label=labels[name])
    for line, style in zip(left.lines, ("-", "--", ":", "-.")):
        line.set_linestyle(style)
    left.legend(fontsize="small")
    left.set_title(f"RMSProp lr {lr:g}, gamma 0.9, on 0.1 x1^2 + 2 x2^2", loc="left")
    plot.schedule(runs["both"], ax=middle)
    middle.set_title("The schedules", loc="left")
    plot.sweep_heatmap(sensitivity, ax=right, label="log10(final loss - least-squares loss)")
    right.set_title(f"{_short(dataset)}, 2 epochs: final loss over gamma and lr", loc="left")
    best = np.unravel_index(np.nanargmin(np.where(sensitivity.diverged, np.nan, sensitivity.final_loss)),
                            sensitivity.shape)
    data_out["best_gamma"], data_out["best_lr"] = float(gammas[best[0]]), float(lrs[best[1]])
    spread = np.ptp(sensitivity.final_loss, axis=0)
    findings = [
        f"Constant lr {lr:g}: the run ends on the period-2 orbit, gap {data_out['final_gap']['constant']:.4g} "
        f"(theory {orbit_gap['constant']:.4g}).",
        f"lr / sqrt(t + 1): the orbit shrinks with the step; after {steps} steps (lr {final_lr:.3g}) the gap is "
        f"{data_out['final_gap']['lr decay']:.3g}, the orbit of that lr has {orbit_gap['lr decay']:.3g}.",
        "gamma = 1 - 1/(t + 2): s is the mean of every squared gradient so far. The run converges while the "
        "early gradients dominate s, but s then decays like 1/t, the step grows like sqrt(t) and the optimum "
        f"turns unstable again: the gap bursts back above 1e-3 at steps {bursts['gamma ramp'] or 'none (run longer)'}.",
        f"Both schedules together make the step lr / sqrt(sum of g^2), Adagrad's, which never grows: no bursts, "
        f"linear convergence at rate {both_rate.rate:.4f} per step (95% CI {both_rate.rate_low:.4f}-"
        f"{both_rate.rate_high:.4f}), gap {data_out['final_gap']['both']:.3g} after {steps} steps.",
        f"On {_described(dataset)}, the final loss depends on lr far more than on gamma: at the best lr it varies "
        f"by {spread[best[1]]:.3g} over gamma, over lr by {np.ptp(sensitivity.final_loss):.3g}; the best cell is "
        f"gamma {data_out['best_gamma']:.3g}, lr {data_out['best_lr']:.3g}.",
    ]
    return Study("gamma_schedules", "Exercise 4: schedules and the sensitivity to gamma", findings, data_out, fig)


def _bursts(gap: np.ndarray, level: float = 1e-3) -> list[int]:
    """Steps at which the gap rises back above ``level`` after having been below it."""
    with np.errstate(invalid="ignore"):
        above = np.asarray(gap, dtype=np.float64) > level
    return [int(k) for k in np.flatnonzero(above[1:] & ~above[:-1]) + 1]


def all_studies(*, data: Any = None, fashion_mnist: str | Path | None = None) -> list[Study]:
    """The four studies at their default sizes (about a minute on 2 cores), in order."""
    return [gamma_one(), rotation(), real_problem(data, fashion_mnist=fashion_mnist), gamma_schedules(data=data)]
