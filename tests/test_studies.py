"""The four exercise studies: their numbers against theory and the chapter, their figures' data, the report."""

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import rmsnum as rn  # noqa: E402
from rmsnum import analysis, report, studies  # noqa: E402
from rmsnum.cli import main  # noqa: E402
from test_classification import write_dataset  # noqa: E402


@pytest.fixture(scope="module")
def small_regression():
    return rn.data.synthetic_regression(n=300, d=3)


# --------------------------------------------------------------------------- exercise 1


def test_gamma_one_diverges_as_predicted():
    study = studies.gamma_one()
    d = study.data
    np.testing.assert_array_equal(d["growth"], [-79.0, -1599.0])
    np.testing.assert_array_equal(d["predicted_growth"], 1 - 0.4 * np.array([0.2, 4.0]) / 1e-3)
    assert d["diverged_at"] == d["predicted_diverged_at"] == 48
    assert d["max_s"] == 0.0
    frozen = d["trajectories"]["s0 = 0"]
    assert np.all(frozen.state.s == 0)
    # every step before the overflow multiplies each coordinate by 1 - lr h / sqrt(eps)
    ratios = frozen.x[1:40] / frozen.x[:39]
    np.testing.assert_allclose(ratios, np.broadcast_to(d["predicted_growth"], ratios.shape), rtol=1e-12)
    # from s = 1 the step is frozen at lr / sqrt(1 + eps): gradient descent, which converges (|1 - 0.4 h| < 1)
    assert d["warm_final_gap"] < 1e-6
    assert d["warm_step"] == pytest.approx(0.4 / math.sqrt(1 + 1e-6))
    assert "48" in " ".join(study.findings)


def test_gamma_one_figure_shows_the_measured_iterates():
    study = studies.gamma_one(steps=30)
    right = study.figure.axes[1]
    measured = [line for line in right.lines if line.get_label().endswith("measured")]
    x = study.data["trajectories"]["s0 = 0"].x
    np.testing.assert_allclose(measured[1].get_ydata(), np.log10(np.abs(x[:, 1])))
    assert right.get_xlabel() and right.get_ylabel()


@pytest.mark.parametrize("kwargs, error", [({"lr": 0}, ValueError), ({"eps": -1.0}, ValueError),
                                           ({"steps": 1}, ValueError), ({"lr": "a"}, TypeError)])
def test_gamma_one_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        studies.gamma_one(**kwargs)


# --------------------------------------------------------------------------- exercise 2


def test_rotation_penalises_rmsprop_only():
    angles = [0.0, math.pi / 8, math.pi / 4, math.pi / 2]
    study = studies.rotation(angles=angles, steps=600)
    best = study.data["best_steps"]
    rms, gd = best["RMSProp"], best["SGD"]
    assert np.all(rms >= 0) and np.all(gd >= 0)
    # the diagonal preconditioner suffers most at 45 degrees and recovers when the axes are swapped
    assert rms[0] < rms[1] < rms[2]
    assert rms[3] == rms[0]
    # gradient descent does not see the rotation
    assert np.all(gd == gd[0])
    # RMSProp's orbit (constant lr) is higher at 45 degrees than on the axes, at every lr where it orbits
    gap = study.data["final_gap"]["RMSProp"]
    orbiting = study.data["lrs"] > 0.01
    assert np.all(gap[2, orbiting] > gap[0, orbiting])


def test_rotation_axis_aligned_equals_the_chapter_quadratic():
    study = studies.rotation(angles=[0.0], lrs=[0.4], steps=20)
    traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), studies.CHAPTER_X0, 20)
    assert study.data["final_gap"]["RMSProp"][0, 0] == traj.gap[-1]


@pytest.mark.parametrize("kwargs", [{"angles": []}, {"angles": [np.nan]}, {"lrs": [0.0]}, {"lrs": [[0.1]]}])
def test_rotation_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        studies.rotation(**kwargs)


# --------------------------------------------------------------------------- exercise 3


def test_real_problem_reproduces_the_chapter(airfoil):
    study = studies.real_problem(airfoil, seeds=4)
    d = study.data
    lrs = d["lrs"]
    chapter = int(np.argmin(np.abs(lrs - 0.01)))
    assert lrs[chapter] == pytest.approx(0.01)
    assert d["mean_loss"][chapter] == pytest.approx(0.245, abs=0.003)  # published: loss 0.245
    assert d["f_star"] == pytest.approx(0.241688, abs=1e-6)
    assert d["best_loss"] <= d["mean_loss"][chapter]
    assert d["best_loss"] - d["f_star"] < 0.005
    # too small an lr has not trained; too large a one jumps around the optimum
    assert d["mean_loss"][0] > 0.4
    assert d["mean_loss"][-1] > 0.5
    assert 1e-3 < d["best_lr"] < 0.1


def test_real_problem_sweep_matches_train(small_regression):
    study = studies.real_problem(small_regression, lrs=[1e-3, 1e-2], seeds=2, epochs=1)
    problem = rn.LinearRegression(small_regression)
    run = rn.train(rn.RMSProp(lr=1e-2, gamma=0.9, eps=1e-6), problem, batch_size=10, epochs=1, seed=1)
    assert study.data["final_loss"][1, 1] == run.final_loss
    left = study.figure.axes[0]
    np.testing.assert_allclose(left.lines[0].get_ydata(), study.data["mean_loss"] - problem.f_star)


def test_real_problem_with_fashion_mnist(tmp_path, small_regression):
    folder = write_dataset(tmp_path / "fmnist", n_train=200, n_test=50)
    study = studies.real_problem(small_regression, lrs=[1e-2], seeds=1, epochs=1, fashion_mnist=folder,
                                 fashion_rows=150)
    fashion = study.data["fashion_mnist"]
    assert fashion["rows"] == 150
    assert np.nanmax(fashion["test_accuracy"]) > 0.9  # separable synthetic classes
    assert len(study.figure.axes) == 3
    assert "Fashion-MNIST" in study.findings[-1]


def test_real_problem_bad_arguments(small_regression, tmp_path):
    with pytest.raises(ValueError, match="lrs"):
        studies.real_problem(small_regression, lrs=[-1.0])
    with pytest.raises(ValueError, match="seeds"):
        studies.real_problem(small_regression, seeds=0)
    with pytest.raises(FileNotFoundError):
        studies.real_problem(tmp_path / "missing.dat")


# --------------------------------------------------------------------------- exercise 4


def test_gamma_schedules(small_regression):
    study = studies.gamma_schedules(steps=2000, data=small_regression, gammas=[0.5, 0.9, 0.99], lrs=[1e-2, 1e-1])
    d = study.data
    assert d["classes"]["constant"] == "orbit"
    # constant lr: the period-2 orbit of amplitude sqrt((lr h / 2)^2 - eps) / h per coordinate
    assert d["final_gap"]["constant"] == pytest.approx(d["orbit_gap_theory"]["constant"], rel=1e-4)
    # decaying lr: the gap follows the orbit of the current lr
    assert d["final_gap"]["lr decay"] == pytest.approx(d["orbit_gap_theory"]["lr decay"], rel=0.02)
    # gamma ramp alone: s ~ 1/t, the step grows like sqrt(t): bursts, further and further apart
    bursts = d["bursts"]["gamma ramp"]
    assert len(bursts) >= 2 and bursts[1] - bursts[0] > bursts[0]
    # both: Adagrad's step; linear convergence without bursts
    assert d["bursts"]["both"] == []
    assert d["classes"]["both"] == "converged"
    assert 0.9 < d["both_rate"].rate < 0.99 and d["both_rate"].r2 > 0.9999
    run = d["trajectories"]["lr decay"]
    np.testing.assert_array_equal(run.schedule["lr"], 0.4 / np.sqrt(np.arange(2000) + 1))
    both = d["trajectories"]["both"]
    np.testing.assert_array_equal(both.schedule["gamma"], 1 - 1 / (np.arange(2000) + 2))
    assert d["sensitivity"].final_loss.shape == (3, 2)
    assert d["best_gamma"] in (0.5, 0.9, 0.99) and d["best_lr"] in (1e-2, 1e-1)
    left = study.figure.axes[0]
    assert [text.get_text() for text in left.get_legend().get_texts()][:4] == [
        "constant", "lr / sqrt(t + 1)", "gamma = 1 - 1/(t + 2)", "both"]


def test_gamma_schedules_bad_arguments(small_regression):
    with pytest.raises(ValueError, match="gammas"):
        studies.gamma_schedules(data=small_regression, gammas=[])
    with pytest.raises(ValueError, match="steps"):
        studies.gamma_schedules(steps=3, data=small_regression)


# --------------------------------------------------------------------------- the report


def _small_studies(data=None, fashion_mnist=None, say=print):
    return [(studies.gamma_one(steps=60), 0.1), (studies.rotation(angles=[0.0, 0.5], lrs=[0.1, 0.4], steps=100), 0.2)]


def test_report_markdown(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "run_studies", _small_studies)
    path = report.write_report(tmp_path / "out", "md")
    text = path.read_text()
    assert path.name == "report.md"
    assert "## Exercise 1: gamma = 1" in text and "overflows at step 48" in text
    assert (tmp_path / "out" / "gamma_one.png").stat().st_size > 1000
    assert "![Exercise 2: the rotated objective](rotation.png)" in text


def test_report_html_is_self_contained(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "run_studies", _small_studies)
    path = report.write_report(tmp_path, "html")
    text = path.read_text()
    assert text.count("src='data:image/png;base64,") == 2
    assert "<h2>Environment</h2>" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_report_bad_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        report.write_report(tmp_path, "pdf")
    assert not any(tmp_path.iterdir())


def test_rmsnum_report_command(tmp_path, capsys, monkeypatch):
    """The real thing: all four studies at their report sizes."""
    monkeypatch.delenv("RMSNUM_DATA", raising=False)
    assert main(["report", "--out", str(tmp_path), "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "Exercise 4" in out
    text = (tmp_path / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 4
    assert "overflows at step 48 (predicted 48)" in text
