"""The notebooks run from top to bottom without errors and print the numbers they promise.

Each notebook is executed once with nbclient, in memory (nothing is written to the
repository; the notebooks are stored without outputs), in a "python3" kernel that must be this
interpreter (ipykernel installed in the same environment provides it). The tests then read the
printed numbers back from the outputs.
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401  (provides the "python3" kernel of this interpreter; in the test extra)
import nbclient
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 600  # seconds per cell: generous, a cold Numba cache compiles in the first cells
KERNEL_CHECK = "import sys\nprint('kernel python:', sys.executable)"
FLOAT = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


class Executed:
    """An executed notebook: its cells, the text it printed and how long it took."""

    def __init__(self, name: str) -> None:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell(KERNEL_CHECK))  # in memory only
        client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOKS)}})
        start = time.perf_counter()
        client.execute()
        self.seconds = time.perf_counter() - start
        self.name = name
        self.nb = nb
        self.outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
        self.stdout = "".join(out.get("text", "") for out in self.outputs
                              if out.output_type == "stream" and out.get("name") == "stdout")

    @property
    def errors(self) -> list[str]:
        return [f"{out.get('ename')}: {out.get('evalue')}" for out in self.outputs if out.output_type == "error"]

    @property
    def images(self) -> int:
        return sum("image/png" in out.get("data", {}) for out in self.outputs)

    def number(self, pattern: str) -> float:
        """The number captured by ``pattern`` (``{x}`` marks it) in the printed text."""
        match = re.search(pattern.replace("{x}", FLOAT), self.stdout)
        assert match, f"{self.name} printed nothing matching {pattern!r}; it printed:\n{self.stdout}"
        return float(match.group(1))


@pytest.fixture(scope="module")
def chapter() -> Executed:
    return Executed("rmsprop.ipynb")


@pytest.fixture(scope="module")
def study() -> Executed:
    return Executed("convergence_study.ipynb")


@pytest.mark.parametrize("name", ["rmsprop.ipynb", "convergence_study.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("fixture", ["chapter", "study"])
def test_notebook_runs_without_errors_in_this_python(fixture, request, record_property):
    run = request.getfixturevalue(fixture)
    record_property("seconds", round(run.seconds, 2))
    print(f"{run.name}: {run.seconds:.1f} s")
    assert run.errors == []
    assert f"kernel python: {sys.executable}\n" in run.stdout


def test_chapter_2d_run_and_orbit(chapter):
    assert "epoch 20, x1: -0.010599, x2: 0.000000" in chapter.stdout
    assert chapter.number(r"half-life\s+{x} steps") == pytest.approx(13.513, abs=1e-3)  # gamma 0.95
    assert chapter.number(r"instability threshold: lr > {x}") == pytest.approx(5e-4)
    assert "class: orbit" in chapter.stdout
    assert "orbit found: True, period: 2\n" in chapter.stdout
    assert re.search(r"amplitude measured: \[0\.19993\d \s*0\.2\s*\]", chapter.stdout)
    assert re.search(r"times curvature: \[2\. 2\.\]", chapter.stdout)


def test_chapter_training(chapter):
    airfoil = "data: airfoil:" in chapter.stdout
    assert airfoil or "data: synthetic:" in chapter.stdout
    loss = chapter.number(r"\nloss: {x}, [\d.]+ sec/epoch\n")
    optimum = chapter.number(r"least-squares optimum: {x}")
    concise = chapter.number(r"loss: {x}, [\d.]+ sec/epoch \(the chapter publishes 0\.246\)")
    assert optimum <= loss < optimum + 0.01
    assert optimum <= concise < optimum + 0.01
    if airfoil:  # the chapter's published numbers hold for its data only
        assert optimum == pytest.approx(0.241688, abs=1e-6)
        assert loss == pytest.approx(0.245, abs=0.005)
        assert concise == pytest.approx(0.246, abs=0.006)
        assert "the chapter publishes 0.245: inside that range" in chapter.stdout


def test_chapter_exercises(chapter):
    assert "The loss overflows at step 48 (predicted 48)." in chapter.stdout
    assert re.search(r"At 90 degrees the axes are swapped and aligned again: \d+ steps", chapter.stdout)
    assert "the least-squares optimum is" in chapter.stdout
    assert "Constant lr 0.4: the run ends on the period-2 orbit" in chapter.stdout
    # every figure shows: weights, 2 traces, orbit, 2 loss curves, 4 studies
    assert chapter.images >= 10


def test_convergence_study_agrees_with_theory(study):
    assert study.number(r"\nagreement: {x} ") >= 0.95
    assert study.number(r"agreement where the run was decided \(not stalled\): {x}") >= 0.99
    assert study.number(r"rate agreement \(within 5%\): {x}") >= 0.95
    assert study.number(r"orbit amplitude against theory: max relative error {x}") < 1e-6
    assert "orbit period: 2," in study.stdout
    assert "(all predicted unstable: True)" in study.stdout
    low = study.number(r"threshold 2 sqrt\(eps\) / h: {x} \.\.")
    high = study.number(r"threshold 2 sqrt\(eps\) / h: [\d.]+ \.\. {x}")
    assert 0.5 < low <= high < 1.0
    assert not math.isnan(study.number(r"notebook ran in {x} s"))
    assert study.images >= 4  # stability map, rates, orbit amplitude, steps to tolerance
