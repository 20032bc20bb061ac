"""The ``rmsnum`` command."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .optimizers import Optimizer

CHAPTER = dict(lr=0.4, gamma=0.9, x0=(-5.0, -2.0), steps=20)


def demo(out: Path, data: Path | None = None, download: bool = False) -> list[str]:
    """Reproduce the chapter's experiments; write PNGs into ``out``; return the summary lines.

    The regression part trains on the airfoil data when a copy is found
    (``data``, ``RMSNUM_DATA`` or the user cache; downloaded only when
    ``download``), else on synthetic data of the same shape.
    """
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

    lines.extend(_demo_regression(data, download, save))
    return lines


def _demo_regression(path: Path | None, download: bool, save: Callable[[Any, str], None]) -> list[str]:
    """The chapter's minibatch training from scratch: RMSProp lr 0.01, gamma 0.9, batch 10, 2 epochs."""
    from matplotlib.figure import Figure

    from . import LinearRegression, RMSProp, data, plot, train

    try:
        dataset = data.load_airfoil(path, download=download)
        note = ""
    except FileNotFoundError:
        if path is not None:
            raise
        dataset = data.synthetic_regression()
        note = " (no local copy of the airfoil data: rmsnum demo --data FILE, or --download)"
    run = train(RMSProp(lr=0.01, gamma=0.9), LinearRegression(dataset), batch_size=10, epochs=2, seed=0)
    lines = [f"minibatch linear regression on {dataset.name}{note}:",
             "  RMSProp lr 0.01, gamma 0.9, batch 10, 2 epochs",
             f"  loss: {run.loss[-1]:.3f}, {run.sec_per_epoch:.3f} sec/epoch "
             f"({run.sec_per_epoch * 1e6:.0f} us per epoch)"]
    fig = Figure(figsize=(6, 4))
    plot.loss_curve(run, ax=fig.subplots(), label="RMSProp from scratch")
    save(fig, "regression_loss.png")
    return lines


OBJECTIVES = ("quadratic_2d", "rotated_quadratic_2d")
OPTIMIZERS = tuple(cls.__name__ for cls in Optimizer.classes)
_NUMBER_LIST = re.compile(r"^-[\d.]")


def parse_optimizer(text: str) -> Callable[..., Any]:
    """An optimizer class or preset from its name: ``"RMSProp"``, ``"RMSProp.torch"``, ``"sgd"``.

    Raises ``argparse.ArgumentTypeError`` (argparse turns it into a usage error)
    naming what is allowed.

    >>> parse_optimizer("RMSProp.torch").__name__
    'torch'
    >>> parse_optimizer("adam").__name__
    'Adam'
    """
    import rmsnum

    classes = {name.lower(): getattr(rmsnum, name) for name in OPTIMIZERS}
    presets = {cls: _presets(cls) for cls in classes.values()}
    allowed = ", ".join([*OPTIMIZERS, *(f"{cls.__name__}.{p}" for cls, ps in presets.items() for p in ps)])
    head, _, preset = text.partition(".")
    cls = classes.get(head.lower())
    if cls is None:
        raise argparse.ArgumentTypeError(f"unknown optimizer {text!r}; allowed: {allowed}")
    if not preset:
        return cls
    match = [p for p in presets[cls] if p.lower() == preset.lower()]
    if not match:
        raise argparse.ArgumentTypeError(f"unknown optimizer {text!r}; allowed: {allowed}")
    return getattr(cls, match[0])


def _optimizer_name(factory: Any) -> str:
    """``"RMSProp"`` for a class, ``"RMSProp.torch"`` for a preset."""
    owner = getattr(factory, "__self__", None)
    return f"{owner.__name__}.{factory.__name__}" if isinstance(owner, type) else factory.__name__


def _presets(cls: type) -> list[str]:
    """The names of a class's framework presets (its public classmethods)."""
    return [name for name, attr in vars(cls).items() if isinstance(attr, classmethod) and not name.startswith("_")]


def _scalar(text: str, token: str) -> bool | int | float:
    """One value of a grid or fixed entry: ``true``/``false``, an int or a float."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(low)
    except ValueError:
        pass
    try:
        value = float(low)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad value {text!r} in {token!r}: expected a number, true or false") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"bad value {text!r} in {token!r}: values must be finite")
    return value


def _name_and_rest(token: str, what: str, form: str) -> tuple[str, str]:
    name, sep, rest = token.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise argparse.ArgumentTypeError(f"bad {what} {token!r}: expected {form}")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"bad {what} {token!r}: {name!r} is not a hyperparameter name")
    return name, rest.strip()


GRID_FORM = "name=start:stop:num[:log] or name=v1,v2,..."
MAX_STEPS = 2**63 - 1
"""The most steps a sweep's kernels count (int64)."""


def parse_grid(token: str) -> tuple[str, np.ndarray | list]:
    """One ``--grid`` entry: ``name=start:stop:num`` (linspace), ``name=start:stop:num:log``
    (log-spaced from start to stop, both given as values) or ``name=v1,v2,...``
    (an explicit list; ``true``/``false`` are booleans).

    Raises ``argparse.ArgumentTypeError`` naming the bad token.

    >>> parse_grid("lr=1e-3:1:4:log")
    ('lr', array([0.001, 0.01 , 0.1  , 1.   ]))
    >>> parse_grid("gamma=0.5:0.9:3")
    ('gamma', array([0.5, 0.7, 0.9]))
    >>> parse_grid("centered=false,true")
    ('centered', [False, True])
    """
    name, spec = _name_and_rest(token, "grid entry", GRID_FORM)
    if ":" in spec:
        parts = spec.split(":")
        log = len(parts) == 4 and parts[3].strip().lower() == "log"
        if len(parts) not in (3, 4):
            raise argparse.ArgumentTypeError(f"bad grid entry {token!r}: expected {GRID_FORM}")
        if len(parts) == 4 and not log:
            raise argparse.ArgumentTypeError(
                f"bad grid entry {token!r}: the fourth field may only be 'log', got {parts[3]!r}")
        start, stop = (float(_scalar(part, token)) for part in parts[:2])
        num = _scalar(parts[2], token)
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise argparse.ArgumentTypeError(
                f"bad grid entry {token!r}: the number of values must be an integer >= 1, got {parts[2]!r}")
        if log and (start <= 0 or stop <= 0):
            raise argparse.ArgumentTypeError(
                f"bad grid entry {token!r}: a log-spaced range needs start and stop > 0 "
                "(give them as values, e.g. lr=1e-3:1:300:log)")
        try:
            return name, (np.geomspace if log else np.linspace)(start, stop, num)
        except MemoryError as err:
            raise argparse.ArgumentTypeError(f"bad grid entry {token!r}: {num} values do not fit in memory ({err})") \
                from None
    items = [item for item in spec.split(",")]
    if any(not item.strip() for item in items):
        raise argparse.ArgumentTypeError(f"bad grid entry {token!r}: empty value in the list")
    values = [_scalar(item, token) for item in items]
    kinds = {isinstance(value, bool) for value in values}
    if len(kinds) > 1:
        raise argparse.ArgumentTypeError(f"bad grid entry {token!r}: mixes booleans and numbers")
    return name, values


def parse_fixed(token: str) -> tuple[str, bool | int | float]:
    """One ``--fixed`` entry ``name=value``.

    >>> parse_fixed("eps=1e-6"), parse_fixed("centered=true")
    (('eps', 1e-06), ('centered', True))
    """
    name, value = _name_and_rest(token, "fixed entry", "name=value")
    return name, _scalar(value, token)


def parse_x0(text: str) -> tuple[float, ...]:
    """``--x0``: comma-separated coordinates, e.g. ``-5,-2``."""
    try:
        values = tuple(float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad starting point {text!r}: expected numbers separated by commas") from None
    if not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"bad starting point {text!r}: coordinates must be finite")
    return values


def _attach_values(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """Let ``--x0 -5,-2`` through argparse (which takes ``-5,-2`` for an option) as ``--x0=-5,-2``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and _NUMBER_LIST.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _describe_axis(name: str, values: np.ndarray) -> str:
    from .plot import _is_log_spaced

    if values.dtype == bool or len(values) <= 6:
        return f"  {name}: {len(values)} value{'s' if len(values) != 1 else ''}, [{', '.join(_fmt(v) for v in values)}]"
    spacing = "log-spaced" if _is_log_spaced(values.astype(np.float64)) else "linear"
    return f"  {name}: {len(values)} values from {_fmt(values[0])} to {_fmt(values[-1])}, {spacing}"


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def path_problem(path: Path, kind: str) -> str | None:
    """Why ``path`` cannot be written as a ``kind`` (``"file"`` or ``"directory"``,
    made with its parents when missing), or None when it can.

    Nothing is created: the path itself, when it exists, must be of that kind
    and writable, else its nearest existing ancestor must be a directory that
    this process may create entries in.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path_problem(folder / "new" / "study.npz", "file") is None
    True
    >>> path_problem(folder, "file")
    'it is a directory'
    >>> (folder / "notes.txt").write_text("x")
    1
    >>> path_problem(folder / "notes.txt" / "study.npz", "file").endswith("notes.txt is not a directory")
    True
    """
    if path.exists():
        if kind == "file" and path.is_dir():
            return "it is a directory"
        if kind == "directory" and not path.is_dir():
            return "it is an existing file, not a directory"
        mode = os.W_OK if kind == "file" else os.W_OK | os.X_OK
        return None if os.access(path, mode) else "permission denied"
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"permission denied in {ancestor}"
    return None


def _check_paths(parser: argparse.ArgumentParser, paths: Sequence[tuple[str, Path | None, str]]) -> None:
    """``parser.error`` for the first (option, path, kind) that cannot be written."""
    for option, path, kind in paths:
        problem = None if path is None else path_problem(path, kind)
        if problem is not None:
            parser.error(f"argument {option}: cannot write {str(path)!r}: {problem}")


class SweepArgumentError(ValueError):
    """A sweep refused its arguments (raised before any work); main() reports it as a usage error."""


def run_sweep(args: argparse.Namespace, say: Callable[[str], Any] = print) -> Any:
    """Run the sweep the parsed ``rmsnum sweep`` arguments describe, save it and its heatmap.

    The summary goes to ``say`` line by line: the configuration before the
    run, then timing, divergences, the best configuration and the files
    written. Returns the SweepResult.
    """
    from matplotlib.figure import Figure

    from . import objectives, plot, sweep

    objective = getattr(objectives, args.objective)()
    grid = dict(args.grid)
    shape = [len(values) for values in grid.values()]
    size = math.prod(shape)
    say(f"rmsnum sweep: {_optimizer_name(args.optimizer)} on {objective.name}, "
        f"x0 = ({', '.join(_fmt(c) for c in args.x0)}), {args.steps} steps, {args.dtype}")
    say(f"grid {' x '.join(map(str, shape))} ({', '.join(grid)}) = {size} configurations")
    for name, values in grid.items():
        say(_describe_axis(name, np.asarray(values)))
    if args.fixed:
        say("  fixed: " + ", ".join(f"{k}={_fmt(val)}" for k, val in args.fixed))

    start = time.perf_counter()
    try:
        res = sweep(args.optimizer, objective, x0=args.x0, steps=args.steps, grid=grid, fixed=dict(args.fixed),
                    checkpoint=args.checkpoint, dtype=args.dtype, progress=True)
    except (TypeError, ValueError, MemoryError) as err:  # the library refuses these before any work
        raise SweepArgumentError(str(err)) from err
    elapsed = time.perf_counter() - start

    rate = size * res.steps / elapsed if elapsed > 0 else float("inf")
    say(f"elapsed {elapsed:.3g} s (kernel compilation or cache loading included), "
        f"{rate:.3g} configuration-steps/s")
    diverged = int(res.diverged.sum())
    say(f"diverged: {diverged} of {size} ({100 * diverged / size:.1f}%)")
    finite = ~res.diverged & np.isfinite(res.final_loss)
    if finite.any():
        flat = int(np.argmin(np.where(finite, res.final_loss, np.inf)))
        index = np.unravel_index(flat, res.shape)
        best = res.config(int(i) for i in index)
        ties = int(np.sum(finite & (res.final_loss == res.final_loss[index])))
        say("best: " + ", ".join(f"{k}={_fmt(val)}" for k, val in best.items())
            + f": final loss {_fmt(res.final_loss[index])} (final loss - f* = {_fmt(res.gap[index])})"
            + (f"; {ties - 1} other configuration{'s' if ties > 2 else ''} reach the same final loss"
               if ties > 1 else ""))
    else:
        say("best: none, every configuration diverged")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    res.save(args.out)
    say(f"wrote {args.out}")
    if len(res.dims) == 2:
        png = args.png if args.png is not None else args.out.with_suffix(".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        fig = Figure(figsize=(7, 5))
        plot.sweep_heatmap(res, ax=fig.subplots())
        fig.savefig(png, dpi=120, bbox_inches="tight")
        say(f"wrote {png}")
    else:
        say(f"no heatmap drawn: the grid has {len(res.dims)} ax{'is' if len(res.dims) == 1 else 'es'} "
            "and a heatmap needs exactly 2")
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmsnum`` console script."""
    parser = argparse.ArgumentParser(prog="rmsnum", description="RMSProp-family optimizers, studied numerically.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="reproduce the chapter's experiments (2-D runs, airfoil regression) as PNGs")
    p_demo.add_argument("--out", type=Path, default=Path("rmsnum-demo"), help="output folder (default ./rmsnum-demo)")
    p_demo.add_argument("--data", type=Path, default=None, metavar="FILE",
                        help="the airfoil data file (default: $RMSNUM_DATA or the user cache; synthetic data if none)")
    p_demo.add_argument("--download", action="store_true",
                        help="download the airfoil data into the user cache when no local copy is found")

    p_report = sub.add_parser("report", help="run the chapter's four exercises as studies and write an HTML or "
                                             "Markdown report with their figures (about a minute on 2 cores)")
    p_report.add_argument("--out", type=Path, default=Path("rmsnum-report"),
                          help="output folder (default ./rmsnum-report)")
    p_report.add_argument("--format", choices=("html", "md"), default="html",
                          help="html: one self-contained file with the figures embedded; md: report.md and PNGs")
    p_report.add_argument("--data", type=Path, default=None, metavar="FILE",
                          help="the airfoil data file (default: $RMSNUM_DATA or the user cache; synthetic data if none)")
    p_report.add_argument("--fashion-mnist", type=Path, default=None, metavar="DIR",
                          help="a folder with the Fashion-MNIST files, for softmax regression in exercise 3")

    p_sweep = sub.add_parser(
        "sweep", help="run a grid of hyperparameters on a 2-D objective; save the result and a heatmap",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every combination of a grid of hyperparameters (compiled, on all cores), save the\n"
                    "SweepResult as .npz (rmsnum.SweepResult.load reads it) and, for 2-axis grids, a heatmap\n"
                    "of log10(final loss - f*) with the diverged configurations hatched.",
        epilog="example:\n"
               "  rmsnum sweep --optimizer RMSProp --x0 -5,-2 --steps 1000 \\\n"
               "      --grid lr=1e-3:1:300:log --grid gamma=0.5:0.999:300 --fixed eps=1e-6 --out study.npz")
    p_sweep.add_argument("--objective", choices=OBJECTIVES, default="quadratic_2d",
                         help="the objective (default quadratic_2d)")
    p_sweep.add_argument("--optimizer", type=parse_optimizer, default="RMSProp",
                         help=f"an optimizer class ({', '.join(OPTIMIZERS)}) or preset "
                              "(RMSProp.torch, .keras, .tf1, .optax, .mxnet, .d2l; Adam.torch, ...); default RMSProp. "
                              "Grid and fixed names are its argument names (alpha for RMSProp.torch)")
    p_sweep.add_argument("--x0", type=parse_x0, default=CHAPTER["x0"], metavar="X1,X2",
                         help="starting point (default -5,-2)")
    p_sweep.add_argument("--steps", type=int, default=1000, help="updates per configuration (default 1000)")
    p_sweep.add_argument("--grid", type=parse_grid, action="append", required=True, metavar="SPEC",
                         help=f"a grid axis, {GRID_FORM} (true/false for booleans); repeat for more axes; "
                              "the first is the heatmap's y axis")
    p_sweep.add_argument("--fixed", type=parse_fixed, action="append", default=[], metavar="NAME=VALUE",
                         help="a hyperparameter held fixed; repeat for more")
    p_sweep.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                         help="computation dtype (default float64)")
    p_sweep.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                         help="save finished chunks here; running the same command again resumes")
    p_sweep.add_argument("--out", type=Path, required=True, help="where to save the result (.npz)")
    p_sweep.add_argument("--png", type=Path, default=None,
                         help="where to save the heatmap (default: --out with suffix .png)")

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_values(argv, ("--x0",)))

    start = time.perf_counter()
    if args.command == "sweep":
        names = [name for name, _ in args.grid]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            p_sweep.error(f"argument --grid: axis {repeated[0]!r} given more than once")
        if not 1 <= args.steps <= MAX_STEPS:
            p_sweep.error(f"argument --steps: must be between 1 and {MAX_STEPS}, got {args.steps}")
        png = (args.png if args.png is not None else args.out.with_suffix(".png")) if len(args.grid) == 2 else None
        _check_paths(p_sweep, [("--out", args.out, "file"), ("--png" if args.png else "--out", png, "file"),
                               ("--checkpoint", args.checkpoint, "directory")])
        try:
            run_sweep(args)
        except SweepArgumentError as err:
            p_sweep.error(str(err))
        return 0

    if args.command == "report":
        from .report import write_report

        _check_paths(p_report, [("--out", args.out, "directory")])
        print("rmsnum report: the RMSProp chapter's exercises as studies")
        try:
            path = write_report(args.out, args.format, data=args.data, fashion_mnist=args.fashion_mnist)
        except (FileNotFoundError, ValueError) as err:
            p_report.error(str(err))
        print(f"wrote {path}")
        print(f"done in {time.perf_counter() - start:.2f} s")
        return 0

    _check_paths(p_demo, [("--out", args.out, "directory")])
    try:
        lines = demo(args.out, args.data, args.download)
    except (FileNotFoundError, ValueError) as err:
        p_demo.error(str(err))
    print("rmsnum demo: the RMSProp chapter of Dive into Deep Learning, reproduced")
    print("\n".join(lines))
    print(f"done in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
