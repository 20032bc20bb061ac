"""The backend interface: every backend implements it, the engine reaches backends only through it,
and backends import neither the optimizer classes nor the engine."""

import ast
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import rmsnum as rn
from rmsnum.backends import base, cpu, reference

PACKAGE = Path(rn.__file__).parent
OPERATIONS = ("missing", "require", "step", "run_objective", "train", "pipeline")


def _parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", base.NAMES, ids=lambda name: f"{name}-module")
def test_every_backend_implements_the_interface(name):
    """Each backend module has every operation of ``base.Backend`` with its parameters, in order."""
    module = importlib.import_module(f"rmsnum.backends.{name}")
    assert module.NAME == name
    for operation in OPERATIONS:
        expected = _parameters(getattr(base.Backend, operation))[1:]  # without self
        assert _parameters(getattr(module, operation)) == expected, (name, operation)


def test_get_names_what_can_run_and_raises_before_any_work():
    assert base.get("cpu", ("cpu", "cuda"), "a sweep") is cpu
    with pytest.raises(ValueError, match=r"backend must be one of \('cpu', 'cuda'\) for a sweep, got 'reference'"):
        base.get("reference", ("cpu", "cuda"), "a sweep")
    with pytest.raises(ValueError, match="got 3"):
        base.get(3, base.NAMES, "one run")


def test_the_engine_refuses_a_backend_that_cannot_run_it_and_says_which_can():
    q = rn.quadratic_2d()
    with pytest.raises(ValueError, match=r"one of \('cpu', 'cuda', 'reference'\) for one run, got 'tpu'"):
        rn.simulate(rn.SGD(lr=0.1), q, (1.0, 1.0), 3, backend="tpu")
    with pytest.raises(ValueError, match="reference runs one configuration"):
        rn.sweep(rn.SGD, q, (1.0, 1.0), 3, {"lr": [0.1]}, backend="reference")


def test_optimizer_step_goes_through_the_interface(monkeypatch):
    calls = []
    get = base.get

    def spy(name, allowed, what):
        calls.append(name)
        return get(name, allowed, what)
    monkeypatch.setattr(base, "get", spy)
    opt = rn.RMSProp(lr=0.1)
    x = np.ones(3)
    opt.step(x, x.copy(), opt.init(x))
    assert calls == ["cpu"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_runs_the_blocked_layout_as_the_cpu_kernel(dtype):
    """Three configurations in three blocks of one lane, with momentum and noise:
    the reference, from the hyperparameters alone, agrees with the compiled kernel
    from the coefficient table."""
    opts = [rn.RMSProp(lr=lr, gamma=gamma, momentum=0.5) for lr, gamma in ((0.05, 0.9), (0.1, 0.8), (0.02, 0.99))]
    q = rn.quadratic_2d().with_noise(0.1)
    dt = np.dtype(dtype)
    steps, every = 40, 4
    C, like = cpu.coefficient_table([opt.coefficients(dt) for opt in opts], dt)
    C = np.ascontiguousarray(C.T)[:, :, np.newaxis]
    outputs = {}
    for backend in (cpu, reference):
        x = np.tile(np.array([-5.0, -2.0], dt), (3, 1))[:, :, np.newaxis].copy()
        S = tuple(np.zeros((3, 2, 1), dt) if slot in opts[0].slots else None for slot in opts[0].spec.slots)
        loss_rec = np.full((3, steps // every + 1, 1), np.nan, dt)
        final_loss, diverged = np.empty((3, 1), dt), np.empty((3, 1), np.int64)
        hit = np.full((3, 1, 1), -1, np.int64)
        seeds = np.array([[1], [2], [3]], np.uint64)
        backend.run_objective(opts[0].rule, None, x, S, None, None, C, like, (q.A.astype(dt), q.b.astype(dt)),
                              0.1, seeds, q.f_star, np.array([0.5], dt), steps, every, loss_rec, None, final_loss,
                              diverged, hit, hyper=[opt.hyperparameters() for opt in opts])()
        outputs[backend.NAME] = (x, *S[:2], loss_rec, final_loss, diverged, hit)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    for got, want in zip(outputs["cpu"], outputs["reference"]):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def _imports(path: Path) -> set[str]:
    """The rmsnum modules that the file at ``path`` imports, as absolute names."""
    package = ".".join(("rmsnum", *path.relative_to(PACKAGE).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parent = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (parent, node.module or "") if part)
            names.update(f"{module}.{alias.name}" if not node.module else module for alias in node.names)
            if node.module is None or module == "rmsnum":
                names.update(f"{module}:{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("rmsnum")}


def test_backends_import_neither_optimizer_classes_nor_the_engine():
    above = ("rmsnum.optimizers", "rmsnum.simulate", "rmsnum.training", "rmsnum.sweep", "rmsnum.analysis",
             "rmsnum.results", "rmsnum.classification")
    for path in (PACKAGE / "backends").glob("*.py"):
        bad = {name for name in _imports(path) if name.startswith(above)}
        assert not bad, f"{path.name} imports {bad}"


def test_nothing_imports_the_package_init_for_its_version():
    for path in PACKAGE.rglob("*.py"):
        assert "rmsnum:__version__" not in _imports(path), path
