"""SweepResult's file format: round trips, and damaged, foreign or inconsistent files refused by name."""

import json
import re
import zipfile

import numpy as np
import pytest

import rmsnum as rn
from user_functions import chapter, chapter_grad  # tests/ is on sys.path

INVALID = "is not a valid rmsnum result file: "
OUTPUTS = ("final_x", "final_loss", "diverged_at", "loss", "loss_steps", "tol", "steps_to_tol")


def _entries(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _write(path, entries):
    with open(path, "wb") as f:
        np.savez(f, **entries)
    return path


def _assert_same(back, res):
    for name in OUTPUTS:
        a, b = getattr(res, name), getattr(back, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), name
    assert back.dims == res.dims and all(np.array_equal(back.axes[k], res.axes[k]) for k in res.axes)
    assert all(back.axes[k].dtype == res.axes[k].dtype for k in res.axes)
    assert (back.optimizer, back.fixed, back.steps, back.provenance, back.training) == (
        res.optimizer, res.fixed, res.steps, res.provenance, res.training)


def _assert_invalid(path, reason):
    with pytest.raises(ValueError) as info:
        rn.SweepResult.load(path)
    message = str(info.value)
    assert message.startswith(f"{path} {INVALID}"), message
    assert re.search(reason, message[len(f"{path} {INVALID}"):]), message


@pytest.fixture(scope="module")
def quadratic(tmp_path_factory):
    """A small real result with every optional array: recorded losses and tolerances."""
    res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 20, grid={"lr": [0.1, 0.4], "gamma": [0.9, 0.99]},
                   record=5, tol=[1e-2, 1e-4], progress=False)
    path = tmp_path_factory.mktemp("quadratic") / "r.npz"
    res.save(path)
    return res, path


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    data = rn.data.synthetic_regression(n=30, d=2, noise=0.3, seed=3)
    problem = rn.LinearRegression(data.X.astype(np.float32), data.y.astype(np.float32))
    res = rn.train_sweep(rn.RMSProp, problem, 10, 2, {"lr": [0.01, 0.1]}, record_every=10, progress=False)
    path = tmp_path_factory.mktemp("training") / "r.npz"
    res.save(path)
    return res, path


@pytest.fixture(scope="module")
def objective(tmp_path_factory):
    obj = rn.Objective(chapter, chapter_grad, 2, minimum=(0.0, 0.0), args=(np.array([0.2, 4.0]),), name="chapter")
    res = rn.sweep(rn.SGD, obj, (1.0, 1.0), 10, grid={"lr": [0.1, 0.2]}, tol=1e-3, progress=False)
    path = tmp_path_factory.mktemp("objective") / "r.npz"
    res.save(path)
    return res, path


def _rewrite(source, dest, change):
    """Copy the npz ``source`` to ``dest`` after ``change(entries, meta)`` (meta parsed;
    written back unless ``change`` replaced or removed the meta entry)."""
    entries = _entries(source)
    original = entries["meta"]
    meta = json.loads(original.item())
    change(entries, meta)
    if entries.get("meta") is original:
        entries["meta"] = np.array(json.dumps(meta))
    return _write(dest, entries)


# --------------------------------------------------------------------------- round trips


def test_round_trips_load_exactly(quadratic, training, objective):
    for res, path in (quadratic, training, objective):
        _assert_same(rn.SweepResult.load(path), res)
    back = rn.SweepResult.load(training[1])
    assert back.final_x.dtype == np.float32 and back.loss.dtype == np.float64
    np.testing.assert_array_equal(back.objective.X, training[0].objective.X)
    np.testing.assert_array_equal(back.loss_epochs, training[0].loss_epochs)
    back = rn.SweepResult.load(objective[1])
    assert back.objective.functions == (chapter, chapter_grad)
    np.testing.assert_array_equal(back.objective.args[0], [0.2, 4.0])


def test_a_compressed_copy_loads_the_same(quadratic, tmp_path):
    res, path = quadratic
    np.savez_compressed(tmp_path / "c.npz", **_entries(path))
    _assert_same(rn.SweepResult.load(tmp_path / "c.npz"), res)


# --------------------------------------------------------------------------- damaged bytes


def test_a_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        rn.SweepResult.load(tmp_path / "nothing.npz")


def test_truncated_files_are_refused(quadratic, tmp_path):
    data = quadratic[1].read_bytes()
    for size in [0, 1, 4, 30, 100, len(data) // 2, len(data) - 100, len(data) - 22, len(data) - 1]:
        path = tmp_path / f"cut{size}.npz"
        path.write_bytes(data[:size])
        _assert_invalid(path, "not an intact .npz archive")


def test_a_flipped_byte_is_refused_or_changes_nothing(quadratic, tmp_path):
    """Every byte of the zip and .npy headers and of the central directory, and every
    13th byte elsewhere: a flip either makes the file invalid (a bad CRC, header or
    size) or falls in a field nothing reads (a timestamp), and the file loads the same."""
    res, source = quadratic
    data = source.read_bytes()
    directory = data.find(b"PK\x01\x02")
    offsets = sorted(set(range(140)) | set(range(directory, len(data))) | set(range(0, len(data), 13)))
    refused = 0
    path = tmp_path / "flipped.npz"
    for offset in offsets:
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            back = rn.SweepResult.load(path)
        except ValueError as err:
            assert str(err).startswith(f"{path} {INVALID}"), (offset, err)
            refused += 1
        else:
            _assert_same(back, res)
    assert refused > 0.7 * len(offsets)


# --------------------------------------------------------------------------- foreign files


def test_foreign_files_are_refused(quadratic, tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("final_loss = 0.1\n")
    _assert_invalid(text, r"not an intact .npz archive \(BadZipFile")
    np.save(tmp_path / "array.npy", np.zeros((2, 2)))
    _assert_invalid(tmp_path / "array.npy", r"not an intact .npz archive \(BadZipFile")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    _assert_invalid(tmp_path / "other.zip", "archive entry 'readme.txt' is not one .npy array")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": 1}], dtype=object))
    _assert_invalid(tmp_path / "pickled.npz", "archive entry 'meta.npy' holds Python objects")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    _assert_invalid(tmp_path / "plain.npz", "it has no 'meta' entry")
    np.savez(tmp_path / "other.npz", meta=np.array('{"format": "x"}'))
    _assert_invalid(tmp_path / "other.npz", "not a saved rmsnum SweepResult")


def _meta(key, value):
    def change(entries, meta):
        meta[key] = value
    return change


def _drop_meta(key):
    def change(entries, meta):
        del meta[key]
    return change


def _record(key, value):
    def change(entries, meta):
        meta["objective"][key] = value
    return change


def _drop_record(key):
    def change(entries, meta):
        del meta["objective"][key]
    return change


def _entry(name, value):
    def change(entries, meta):
        entries[name] = value(entries[name]) if callable(value) else value
    return change


def _drop(*names):
    def change(entries, meta):
        for name in names:
            del entries[name]
    return change


def _x0_axis(entries, meta):
    meta["axes"] = ["x0", "gamma"]
    entries["axis_0"] = np.zeros((2, 3))


def _provenance_dtype(entries, meta):
    meta["provenance"]["dtype"] = "float32"


QUADRATIC_CASES = [
    ("no meta", _drop("meta"), "it has no 'meta' entry"),
    ("meta not JSON", _entry("meta", np.array("{format: 1")), "its 'meta' entry is not JSON"),
    ("meta a JSON list", _entry("meta", np.array("[1, 2]")), "is \\[1, 2\\], not a JSON object"),
    ("meta numbers", _entry("meta", np.arange(3)), "'meta' entry is a int64 array of shape \\(3,\\), not a JSON"),
    ("wrong format", _meta("format", "rmsnum.SweepResult/0"), "format is 'rmsnum.SweepResult/0': not a saved"),
    ("no format", _drop_meta("format"), "format is None: not a saved"),
    *[(f"no {key}", _drop_meta(key), f"its meta lacks '{key}'")
      for key in ("axes", "optimizer", "fixed", "objective", "steps", "training", "provenance")],
    ("unknown meta key", _meta("colour", "red"), "its meta has unexpected 'colour'"),
    ("axes a string", _meta("axes", "lr"), r"meta\['axes'\] is 'lr', not a list"),
    ("axes repeated", _meta("axes", ["lr", "lr"]), "distinct axis names"),
    ("axes no names", _meta("axes", []), "non-empty list"),
    ("an axis fewer", _meta("axes", ["lr"]), r"'final_x' array has shape \(2, 2, 2\), not the grid's \(2,\)"),
    ("optimizer a number", _meta("optimizer", 3), r"meta\['optimizer'\] is 3, not an optimizer's name"),
    ("fixed a list", _meta("fixed", []), r"meta\['fixed'\] is \[\], not a dict"),
    ("steps negative", _meta("steps", -1), r"meta\['steps'\] is -1, not an integer >= 0"),
    ("steps a bool", _meta("steps", True), r"meta\['steps'\] is True"),
    ("steps a string", _meta("steps", "20"), r"meta\['steps'\] is '20'"),
    ("steps fewer", _meta("steps", 10), r"'diverged_at' array has values outside \[-1, 10\]|'loss_steps'"),
    ("training a list", _meta("training", []), r"meta\['training'\] is \[\], not a training record"),
    ("training on a quadratic", _meta("training", {"batch_size": 1}), "training sweep with a 'tol'"),
    ("provenance missing", _meta("provenance", None), r"meta\['provenance'\] is None, not a dict"),
    ("provenance dtype", _provenance_dtype, "provenance dtype is 'float32', but 'final_x' is float64"),
    ("no axis array", _drop("axis_1"), "it has no 'axis_1' array"),
    ("axis of ints", _entry("axis_0", np.array([1, 2])), "'axis_0' array has dtype int64, not bool or float64"),
    ("axis 2-D", _entry("axis_0", np.zeros((2, 1))), r"'axis_0' array \(axis 'lr'\) has shape \(2, 1\)"),
    ("axis empty", _entry("axis_0", np.zeros(0)), r"has shape \(0,\), not that of a non-empty vector"),
    ("axis not finite", _entry("axis_0", np.array([0.1, np.nan])), "'axis_0' array .* is not finite"),
    ("x0 axis of other points", _x0_axis, r"'x0' axis has points of shape \(3,\), but 'final_x' points of \(2,\)"),
    *[(f"no {name}", _drop(name), f"it has no '{name}' array") for name in ("final_x", "final_loss", "diverged_at")],
    ("final_loss of another shape", _entry("final_loss", lambda a: a[:1]),
     r"'final_loss' array has shape \(1, 2\), not \(2, 2\)"),
    ("final_x of another grid", _entry("final_x", lambda a: a[:1]), r"'final_x' array has shape \(1, 2, 2\)"),
    ("final_x without points", _entry("final_x", lambda a: a[..., 0]), r"'final_x' array has shape \(2, 2\), not"),
    ("final_x of another dimension", _entry("final_x", lambda a: a[..., :1]),
     r"'objective_A' array has shape \(2,\), not \(1,\) or \(1, 1\)"),
    ("final_x of ints", _entry("final_x", lambda a: a.astype(np.int64)), "'final_x' array has dtype int64"),
    ("final_loss in float32", _entry("final_loss", lambda a: a.astype(np.float32)),
     "'final_loss' array has dtype float32, not float64"),
    ("diverged_at int32", _entry("diverged_at", lambda a: a.astype(np.int32)), "'diverged_at' array has dtype int32"),
    ("diverged_at floats", _entry("diverged_at", lambda a: a.astype(np.float64)), "'diverged_at' .* dtype float64"),
    ("diverged_at past the steps", _entry("diverged_at", lambda a: np.full_like(a, 21)), r"outside \[-1, 20\]"),
    ("diverged_at below -1", _entry("diverged_at", lambda a: np.full_like(a, -2)), r"outside \[-1, 20\]"),
    ("loss of another length", _entry("loss", lambda a: a[..., :-1]),
     r"'loss' array has shape \(2, 2, 4\), not \(2, 2, 5\)"),
    ("loss in float32", _entry("loss", lambda a: a.astype(np.float32)), "'loss' array has dtype float32"),
    ("loss without its steps", _drop("loss_steps"), "it has 'loss' without 'loss_steps'"),
    ("steps without their loss", _drop("loss"), "it has 'loss_steps' without 'loss'"),
    ("loss_steps irregular", _entry("loss_steps", np.array([0, 5, 10, 15, 19])), "not every k-th step of 0..20"),
    ("loss_steps decreasing", _entry("loss_steps", lambda a: a[::-1].copy()), "not increasing step numbers"),
    ("loss_steps past the steps", _entry("loss_steps", np.array([0, 10, 20, 30, 40])), r"in \[0, 20\]"),
    ("loss_steps floats", _entry("loss_steps", lambda a: a.astype(np.float64)), "'loss_steps' array has dtype float64"),
    ("steps_to_tol for other tol", _entry("tol", np.array([1e-2])),
     r"'steps_to_tol' array has shape \(2, 2, 2\), not \(2, 2, 1\)"),
    ("steps_to_tol without tol", _drop("tol"), "it has 'steps_to_tol' without 'tol'"),
    ("tol without steps_to_tol", _drop("steps_to_tol"), "it has 'tol' without 'steps_to_tol'"),
    ("tol negative", _entry("tol", np.array([1e-2, -1.0])), "not a vector of finite tolerances > 0"),
    ("tol in float32", _entry("tol", lambda a: a.astype(np.float32)), "'tol' array has dtype float32"),
    ("steps_to_tol past the steps", _entry("steps_to_tol", lambda a: np.full_like(a, 99)), r"outside \[-1, 20\]"),
    ("steps_to_tol floats", _entry("steps_to_tol", lambda a: a.astype(np.float64)), "'steps_to_tol' .* float64"),
    ("objective without kind", _drop_record("kind"), "objective record has kind None"),
    ("objective of unknown kind", _record("kind", "cubic"), "objective record has kind 'cubic'"),
    ("objective record a list", _meta("objective", []), r"meta\['objective'\] is \[\], not an objective record"),
    ("no objective_A", _drop("objective_A"), "it has no 'objective_A' array"),
    ("no objective_b", _drop("objective_b"), "it has no 'objective_b' array"),
    ("objective_A of another size", _entry("objective_A", np.ones(3)), r"'objective_A' array has shape \(3,\)"),
    ("objective_b of ints", _entry("objective_b", np.zeros(2, np.int64)), "'objective_b' array has dtype int64"),
    ("objective_A not positive", _entry("objective_A", np.array([-1.0, 4.0])),
     "quadratic objective .* cannot be rebuilt: the diagonal A must be > 0"),
    ("objective noise negative", _record("noise", -1.0), "cannot be rebuilt: noise must be in"),
    ("objective name a number", _record("name", 7), "objective record's 'name' is 7, not a str"),
    ("objective record key unknown", _record("colour", "red"), "objective record has unexpected 'colour'"),
    ("objective record key missing", _drop_meta("objective"), "its meta lacks 'objective'"),
    ("an unexpected entry", _entry("junk", np.zeros(1)), r"it has unexpected entries \['junk'\]"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in QUADRATIC_CASES],
                         ids=[case[0] for case in QUADRATIC_CASES])
def test_inconsistent_files_are_refused(quadratic, tmp_path, change, reason):
    _assert_invalid(_rewrite(quadratic[1], tmp_path / "bad.npz", change), reason)


def _training_record(key, value):
    def change(entries, meta):
        meta["training"][key] = value
    return change


def _drop_training_key(key):
    def change(entries, meta):
        del meta["training"][key]
    return change


def _fewer_examples(entries, meta):
    meta["training"]["record_examples"] = meta["training"]["record_examples"][:-1]


TRAINING_CASES = [
    ("no training record", _meta("training", None), "'final_loss' array has dtype float64, not float32"),
    ("training record lacks a key", _drop_training_key("record_examples"), "lacks 'record_examples'"),
    ("batch size zero", _training_record("batch_size", 0), r"\['batch_size'\] is 0, not an integer >= 1"),
    ("init a number", _training_record("init", 0.5), r"\['init'\] is 0.5, not an init name"),
    ("record_examples fewer", _fewer_examples, "not 6 increasing example counts"),
    ("steps not the schedule's", _meta("steps", 7), r"meta\['steps'\] is 7, not the 6 updates of 2 epochs"),
    ("no loss", _drop("loss", "loss_steps"), "it is a training sweep without a 'loss' array"),
    ("final_loss in float32", _entry("final_loss", lambda a: a.astype(np.float32)),
     "'final_loss' array has dtype float32, not float64"),
    ("data of another dtype", _entry("objective_X", lambda a: a.astype(np.float64)),
     "'objective_X' array has dtype float64, not float32"),
    ("data of other features", _entry("objective_X", lambda a: a[:, :1].copy()),
     r"'objective_X' array has shape \(30, 1\), not \(n, 2\)"),
    ("targets fewer", _entry("objective_y", lambda a: a[:-1].copy()), r"'objective_y' array has shape \(29,\)"),
    ("training on a quadratic", _record("kind", "quadratic"), "objective record lacks 'noise'"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in TRAINING_CASES],
                         ids=[case[0] for case in TRAINING_CASES])
def test_inconsistent_training_files_are_refused(training, tmp_path, change, reason):
    _assert_invalid(_rewrite(training[1], tmp_path / "bad.npz", change), reason)


OBJECTIVE_CASES = [
    ("no argument array", _drop("objective_arg_0"), "no numeric 'objective_arg_0' array for the objective's args"),
    ("argument of strings", _entry("objective_arg_0", np.array(["a", "b"])), "no numeric 'objective_arg_0'"),
    ("argument a bool", _record("args", [True]), r"args\[0\] is True, not a finite real number"),
    ("dimension other", _record("dim", 3), "'dim' is 3, but 'final_x' has points of 2 coordinates"),
    ("dimension zero", _record("dim", 0), "'dim' is 0, not an integer >= 1"),
    ("f_star a string", _record("f_star", "0"), "'f_star' is '0', not a finite real number or null"),
    ("minimum a string", _record("minimum", "0"), "'minimum' is '0', not a list"),
    ("path without colon", _record("value", "user_functions.chapter"), "not a function's import path"),
    ("path of a number", _record("grad", 3), "'grad' is 3, not a function's import path"),
    ("path empty module", _record("value", ":chapter"), "not a function's import path"),
    ("path to a number", _record("value", "math:pi"), "objective objective 'chapter' cannot be rebuilt: value must be"),
    ("minimum of another size", _record("minimum", [0.0]), r"cannot be rebuilt: minimum must have shape \(2,\)"),
    ("a key missing", _drop_record("noise"), "objective record lacks 'noise'"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in OBJECTIVE_CASES],
                         ids=[case[0] for case in OBJECTIVE_CASES])
def test_inconsistent_objective_files_are_refused(objective, tmp_path, change, reason):
    _assert_invalid(_rewrite(objective[1], tmp_path / "bad.npz", change), reason)


def test_documented_errors_of_an_objective_stay_as_they_are(objective, quadratic, tmp_path):
    res, path = objective
    gone = _rewrite(path, tmp_path / "gone.npz", _record("value", "no_such_module_for_rmsnum:chapter"))
    with pytest.raises(ValueError, match="cannot be imported here; give it again") as info:
        rn.SweepResult.load(gone)
    assert INVALID not in str(info.value)
    assert rn.SweepResult.load(gone, objective=res.objective).objective is res.objective
    with pytest.raises(TypeError, match="objective= is for a sweep saved on an Objective"):
        rn.SweepResult.load(quadratic[1], objective=res.objective)
    with pytest.raises(TypeError, match="objective= is for a sweep saved on an Objective"):
        rn.SweepResult.load(path, objective=rn.quadratic_2d())
    other = rn.Objective(lambda x: x[0] * x[0], lambda x, out: None, 1)
    with pytest.raises(ValueError, match="objective must have dimension 2 as the saved sweep's, got 1"):
        rn.SweepResult.load(path, objective=other)
    # A damaged file is refused even when the objective is given.
    _assert_invalid(_rewrite(path, tmp_path / "bad.npz", _drop("final_loss")), "it has no 'final_loss' array")


# --------------------------------------------------------------------------- one result model: runs


RUN_ARRAYS = ("final_x", "final_loss", "x", "loss", "loss_steps")


def _assert_same_run(back, run):
    """Bit-identical arrays, the same optimizer, state, objective and provenance."""
    for name in RUN_ARRAYS:
        a, b = getattr(run, name, None), getattr(back, name, None)
        assert (a is None) == (b is None), name
        if a is not None:
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), name
    assert back.optimizer == run.optimizer and type(back.optimizer) is type(run.optimizer)
    assert back.optimizer.hyperparameters() == run.optimizer.hyperparameters()
    assert back.state.slots == run.state.slots and back.state.t == run.state.t
    for slot in run.state.slots:
        a, b = getattr(run.state, slot), getattr(back.state, slot)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.asarray(back.state.d1).tobytes() == np.asarray(run.state.d1).tobytes()
    assert (back.diverged_at, back.steps, back.provenance) == (run.diverged_at, run.steps, run.provenance)
    assert back.objective.name == run.objective.name
    assert type(back) is type(run)


@pytest.fixture(scope="module", params=["float64", "float32"])
def trajectory(request, tmp_path_factory):
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), (-5.0, -2.0), 20, dtype=request.param)
    path = tmp_path_factory.mktemp("trajectory") / "t.npz"
    traj.save(path)
    return traj, path


@pytest.fixture(scope="module", params=["float64", "float32"])
def train_run(request, tmp_path_factory):
    data = rn.data.synthetic_regression(n=30, d=2, noise=0.3, seed=3)
    problem = rn.LinearRegression(data.X.astype(request.param), data.y.astype(request.param))
    run = rn.train(rn.Adam.torch(lr=0.01), problem, 10, 2, seed=4, record=2, backend="reference")
    path = tmp_path_factory.mktemp("train") / "t.npz"
    run.save(path)
    return run, path


def test_trajectories_round_trip_exactly(trajectory, tmp_path):
    traj, path = trajectory
    back = rn.Trajectory.load(path)
    _assert_same_run(back, traj)
    assert back.x.dtype == traj.x.dtype == np.dtype(traj.provenance["dtype"]) and back.record == 1
    for kwargs in (dict(record="final"), dict(record="loss"), dict(record=7),
                   dict(record=3, backend="reference", schedule={"lr": np.linspace(0.4, 0.1, 20)}),
                   dict(backend="reference", objective=rn.Objective(chapter, chapter_grad, 2, f_star=0.0,
                                                                    args=(np.array([0.2, 4.0]),)))):
        obj = kwargs.pop("objective", rn.quadratic_2d())
        run = rn.simulate(rn.Momentum(lr=0.01, beta=0.5), obj, (1.0, 2.0), 20, dtype=traj.x.dtype, **kwargs)
        run.save(tmp_path / "r.npz")
        back = rn.Trajectory.load(tmp_path / "r.npz")
        _assert_same_run(back, run)
        assert back.record == run.record
        if run.schedule:
            assert back.schedule.keys() == run.schedule.keys()
            assert np.array_equal(back.schedule["lr"], run.schedule["lr"])


def test_training_runs_round_trip_exactly(train_run, tmp_path):
    run, path = train_run
    back = rn.TrainResult.load(path)
    _assert_same_run(back, run)
    assert back.final_x.dtype == run.problem.dtype and back.loss.dtype == np.float64
    assert back.final_loss == run.final_loss and back.sec_per_epoch == run.sec_per_epoch
    np.testing.assert_array_equal(back.initial, run.initial)
    np.testing.assert_array_equal(back.problem.X, run.problem.X)
    np.testing.assert_array_equal(back.loss_epochs, run.loss_epochs)
    assert (back.record, back.record_every, back.batch_size, back.epochs) == (2, None, 10, 2)
    for kwargs in (dict(record="final"), dict(record_every=10), dict()):
        other = rn.train(rn.RMSProp(lr=0.01), run.problem, 10, 2, backend="reference", **kwargs)
        other.save(tmp_path / "o.npz")
        _assert_same_run(rn.TrainResult.load(tmp_path / "o.npz"), other)


def test_a_diverged_run_round_trips(tmp_path):
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=1.0), rn.quadratic_2d(), (-5.0, -2.0), 200, backend="reference")
    assert traj.diverged_at is not None
    traj.save(tmp_path / "d.npz")
    _assert_same_run(rn.Trajectory.load(tmp_path / "d.npz"), traj)


def _assert_run_invalid(cls, path, reason):
    with pytest.raises(ValueError) as info:
        cls.load(path)
    message = str(info.value)
    assert message.startswith(f"{path} {INVALID}"), message
    assert re.search(reason, message[len(f"{path} {INVALID}"):]), message


def test_damaged_run_files_are_refused(trajectory, train_run, tmp_path):
    for cls, (run, source) in ((rn.Trajectory, trajectory), (rn.TrainResult, train_run)):
        data = source.read_bytes()
        for size in [0, 30, len(data) // 2, len(data) - 22, len(data) - 1]:
            (tmp_path / "cut.npz").write_bytes(data[:size])
            _assert_run_invalid(cls, tmp_path / "cut.npz", "not an intact .npz archive")
        directory = data.find(b"PK\x01\x02")
        offsets = sorted(set(range(0, 140, 3)) | set(range(directory, len(data), 7)) | set(range(0, len(data), 29)))
        refused = 0
        for offset in offsets:
            damaged = bytearray(data)
            damaged[offset] ^= 0xFF
            (tmp_path / "flip.npz").write_bytes(bytes(damaged))
            try:
                back = cls.load(tmp_path / "flip.npz")
            except ValueError as err:
                assert str(err).startswith(f"{tmp_path / 'flip.npz'} {INVALID}"), (offset, err)
                refused += 1
            else:
                _assert_same_run(back, run)
        assert refused > 0.7 * len(offsets)


def test_foreign_and_other_kinds_of_files_are_refused(trajectory, train_run, quadratic, tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    _assert_run_invalid(rn.Trajectory, tmp_path / "plain.npz", "it has no 'meta' entry")
    _assert_run_invalid(rn.Trajectory, quadratic[1], "meta format is 'rmsnum.SweepResult/1': not a saved rmsnum "
                                                     "Trajectory")
    _assert_run_invalid(rn.TrainResult, trajectory[1], "not a saved rmsnum TrainResult")
    _assert_invalid(train_run[1], "not a saved rmsnum SweepResult")
    stale = _rewrite(trajectory[1], tmp_path / "stale.npz", _meta("format", "rmsnum.Trajectory/0"))
    _assert_run_invalid(rn.Trajectory, stale, r"format is 'rmsnum.Trajectory/0'")


RUN_CASES = [
    ("steps other", _meta("steps", 19), r"'loss_steps' array is not every 1-th step of 0..19"),
    ("record other", _meta("record", 2), r"'loss_steps' array is not every 2-th step"),
    ("record unknown", _meta("record", "all"), r"meta\['record'\] is 'all'"),
    ("state count", lambda e, m: m["state"].update(t=3), "its state counts 3 steps, but the run did 20"),
    ("diverged late", _meta("diverged_at", 21), r"diverged_at'\] is 21, more than the run's 20 steps"),
    ("slot dropped", _drop("state_s"), "it has no 'state_s' array"),
    ("slot of other size", _entry("state_s", lambda a: a[:1].copy()), r"'state_s' array has shape \(1,\)"),
    ("x of another dtype", _entry("x", lambda a: a.astype(np.float16)), "'x' array has dtype float16"),
    ("loss shorter", _entry("loss", lambda a: a[:-1].copy()), r"'loss' array has shape \(20,\), not \(21,\)"),
    ("an extra entry", _entry("extra", np.zeros(2)), r"unexpected entries \['extra'\]"),
    ("optimizer unknown", lambda e, m: m["optimizer"].update({"class": "os:system"}),
     "not the import path of an rmsnum optimizer class"),
    ("optimizer not one", lambda e, m: m["optimizer"].update({"class": "rmsnum.objectives:Quadratic"}),
     "is not an optimizer class"),
    ("optimizer value bad", lambda e, m: m["optimizer"]["fields"].update(lr=-1.0), "RMSProp cannot be rebuilt"),
    ("optimizer field unknown", lambda e, m: m["optimizer"]["fields"].update(alpha=1.0), "cannot be rebuilt"),
    ("provenance dtype", lambda e, m: m["provenance"].update(dtype="float16"), "provenance dtype is 'float16'"),
    ("a key missing", lambda e, m: m.pop("schedule"), "its meta lacks 'schedule'"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in RUN_CASES], ids=[case[0] for case in RUN_CASES])
def test_inconsistent_trajectory_files_are_refused(trajectory, tmp_path, change, reason):
    _assert_run_invalid(rn.Trajectory, _rewrite(trajectory[1], tmp_path / "bad.npz", change), reason)


TRAIN_CASES = [
    ("epochs other", _meta("epochs", 3), r"meta\['steps'\] is 6, not the 9 updates"),
    ("record bad", _meta("record", 0), "training schedule is not valid: record must be a positive int"),
    ("loss_steps other", _entry("loss_steps", lambda a: a + 1), "'loss_steps' array is not the recorded updates"),
    ("loss in float32", _entry("loss", lambda a: a.astype(np.float32)), "'loss' array has dtype float32"),
    ("initial shorter", _entry("initial", lambda a: a[:-1].copy()), r"'initial' array has shape \(2,\)"),
    ("on a quadratic", lambda e, m: m["objective"].update(kind="quadratic"), "not a linear regression"),
    ("sec_per_epoch", _meta("sec_per_epoch", "fast"), r"sec_per_epoch'\] is 'fast'"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in TRAIN_CASES], ids=[case[0] for case in TRAIN_CASES])
def test_inconsistent_training_run_files_are_refused(train_run, tmp_path, change, reason):
    _assert_run_invalid(rn.TrainResult, _rewrite(train_run[1], tmp_path / "bad.npz", change), reason)


def test_to_xarray_of_runs(trajectory, train_run):
    pytest.importorskip("xarray")
    traj = trajectory[0]
    ds = traj.to_xarray()
    assert ds.x.dims == ("step", "coord") and ds.loss.dims == ("step",) and ds.final_x.dims == ("coord",)
    np.testing.assert_array_equal(ds.step, np.arange(21))
    np.testing.assert_array_equal(ds.x.values, traj.x)
    assert ds.attrs["diverged_at"] == -1 and ds.attrs["dtype"] == traj.provenance["dtype"]
    assert json.loads(ds.attrs["hyperparameters"])["lr"] == 0.4
    run = train_run[0]
    ds = run.to_xarray()
    assert ds.final_x.dims == ("param",) and list(ds.param.values) == ["w0", "w1", "b"]
    np.testing.assert_array_equal(ds.step, run.loss_steps)
    np.testing.assert_array_equal(ds.epoch, run.loss_epochs)
    final = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 20, record="final",
                        backend="reference").to_xarray()
    assert set(final.data_vars) == {"final_x", "final_loss"}


def test_the_shared_names(trajectory, train_run, quadratic):
    """The same names on all three results."""
    for result in (trajectory[0], train_run[0], quadratic[0]):
        assert isinstance(result, rn.results.Result)
        for name in ("final_x", "final_loss", "loss", "loss_steps", "hyperparameters", "diverged_at", "diverged",
                     "steps", "objective", "provenance"):
            getattr(result, name)
    assert trajectory[0].hyperparameters["lr"] == 0.4 and train_run[0].hyperparameters["lr"] == 0.01
    np.testing.assert_array_equal(quadratic[0].hyperparameters["lr"], [0.1, 0.4])
    assert trajectory[0].diverged is False and trajectory[0].diverged_at is None
    run = train_run[0]
    np.testing.assert_array_equal(run.w, run.final_x[:-1])
    assert run.b == run.final_x[-1] and run.objective is run.problem


def test_the_old_name_loss_curve_warns(train_run):
    run = train_run[0]
    with pytest.warns(DeprecationWarning, match="loss_curve is deprecated.*TrainResult.loss"):
        assert run.loss_curve is run.loss


def test_a_training_sweep_of_final_values_round_trips(tmp_path):
    data = rn.data.synthetic_regression(n=30, d=2, noise=0.3, seed=3)
    problem = rn.LinearRegression(data.X.astype(np.float32), data.y.astype(np.float32))
    res = rn.train_sweep(rn.RMSProp, problem, 10, 2, {"lr": [0.01, 0.1]}, record="final", progress=False)
    assert res.loss is None and res.loss_steps is None and res.training["record"] == "final"
    res.save(tmp_path / "f.npz")
    _assert_same(rn.SweepResult.load(tmp_path / "f.npz"), res)
    curves = rn.train_sweep(rn.RMSProp, problem, 10, 2, {"lr": [0.01, 0.1]}, record=2, progress=False)
    np.testing.assert_array_equal(curves.final_x, res.final_x)
    assert curves.loss_steps.tolist() == [2, 4, 6]
