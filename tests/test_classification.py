"""Softmax regression on Fashion-MNIST: the IDX loader, the model's loss and gradient, the training loop.

The tests write tiny synthetic IDX files (200 images of 28 x 28 from 10 well-separated class prototypes
plus noise); the real dataset is used only when a local copy exists, and nothing touches the network.
"""

import gzip
import math
import socket
from pathlib import Path

import numpy as np
import pytest

import rmsnum as rn
from conftest import DATA_DIR
from rmsnum.classification import (FASHION_MNIST_CLASSES, ClassificationData, SoftmaxRegression, SoftmaxResult,
                                   load_fashion_mnist, train_softmax)

REAL_DIR = DATA_DIR / "fashion-mnist"  # ../shared/data, or $RMSNUM_TEST_DATA (conftest.py)
N = 200
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --------------------------------------------------------------------------- IDX writer and synthetic data


def write_idx(path, array, *, magic=None, compress=None):
    """Write a uint8 array as an IDX file (big-endian header); gzip it when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: 2049, 3: 2051}[array.ndim] if magic is None else magic
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    raw = header + array.tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def synthetic_images(n, seed):
    """n images from 10 random binary prototypes (flipped with noise), labels cycling 0..9, shuffled."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).random((10, 28, 28)) < 0.5
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    noise = rng.integers(0, 60, (n, 28, 28))
    images = np.where(prototypes[labels], 255 - noise, noise).astype(np.uint8)
    return images, labels


def write_dataset(directory, *, gz=True, n_train=N, n_test=50):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for kind, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_images(n, seed)
        write_idx(directory / f"{kind}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{kind}-labels-idx1-ubyte{suffix}", labels)
    return directory


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tests must not reach the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(params=["gz", "plain"])
def idx_dir(request, tmp_path):
    return write_dataset(tmp_path / request.param, gz=request.param == "gz")


@pytest.fixture(scope="module")
def fmnist_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def train64(fmnist_dir):
    return load_fashion_mnist(fmnist_dir, dtype=np.float64)


def tiny_data(dtype="float64", n=30, p=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return ClassificationData(rng.standard_normal((n, p)).astype(dtype), rng.integers(0, k, n),
                              tuple("abcdefghij"[:k]), "tiny", "synthetic")


# --------------------------------------------------------------------------- the loader


def test_loader_shapes_dtypes_scaling_and_labels(idx_dir):
    images, labels = synthetic_images(N, 1)
    data = load_fashion_mnist(idx_dir)
    assert isinstance(data, ClassificationData)
    assert data.X.shape == (N, 784) and data.X.dtype == np.float32
    assert data.labels.shape == (N,) and data.labels.dtype == np.int64
    assert (data.n, data.features, data.n_classes) == (N, 784, 10)
    assert data.classes == FASHION_MNIST_CLASSES == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.X, images.reshape(N, 784).astype(np.float32) / np.float32(255))
    assert data.X.min() >= 0 and data.X.max() <= 1
    assert not data.X.flags.writeable and not data.labels.flags.writeable
    assert "Fashion-MNIST" in data.name and "train-images-idx3-ubyte" in data.source


def test_loader_float64_row_major_and_exact_scaling(idx_dir):
    images, _ = synthetic_images(N, 1)
    data = load_fashion_mnist(idx_dir, dtype="float64")
    assert data.X.dtype == np.float64
    np.testing.assert_array_equal(data.X[7].reshape(28, 28), images[7] / 255.0)
    assert data.X[0, 0] == images[0, 0, 0] / 255 and data.X[0, 28] == images[0, 1, 0] / 255


def test_loader_kind_and_limit(idx_dir):
    test = load_fashion_mnist(idx_dir, kind="t10k")
    assert test.n == 50 and "t10k" in test.name
    np.testing.assert_array_equal(test.labels, synthetic_images(50, 2)[1])
    full = load_fashion_mnist(idx_dir)
    part = load_fashion_mnist(idx_dir, limit=17)
    assert part.n == 17
    np.testing.assert_array_equal(part.X, full.X[:17])
    np.testing.assert_array_equal(part.labels, full.labels[:17])
    assert load_fashion_mnist(idx_dir, limit=10**6).n == N


def test_loader_mixes_gzipped_and_plain_files_and_detects_gzip_by_content(tmp_path):
    images, labels = synthetic_images(20, 3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    data = load_fashion_mnist(tmp_path, limit=None)
    np.testing.assert_array_equal(data.labels, labels)
    # An uncompressed file behind a .gz name (as some unpacking tools leave it) still reads.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, compress=False)
    np.testing.assert_array_equal(load_fashion_mnist(tmp_path).X, data.X)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kind="test"), ValueError, r"kind must be one of \('train', 't10k'\)"),
        (dict(kind=3), TypeError, "kind must be a str"),
        (dict(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
        (dict(dtype="float16"), TypeError, "dtype must be float32 or float64"),
        (dict(dtype="nonsense"), TypeError, "dtype must be float32 or float64"),
        (dict(limit=0), ValueError, "limit must be an integer >= 1"),
        (dict(limit=2.0), TypeError, "limit must be an integer"),
        (dict(limit=True), TypeError, "limit must be an integer"),
    ],
)
def test_loader_bad_arguments(fmnist_dir, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_fashion_mnist(fmnist_dir, **kwargs)


def test_loader_bad_path_type():
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        load_fashion_mnist(42)


def test_loader_missing_directory_names_files_and_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message


def test_loader_path_that_is_a_file(tmp_path):
    f = write_idx(tmp_path / "train-images-idx3-ubyte", synthetic_images(3, 0)[0])
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_fashion_mnist(f)


@pytest.mark.parametrize("missing", FILES)
def test_loader_missing_file(tmp_path, missing):
    write_dataset(tmp_path, gz=False)
    (tmp_path / missing).unlink()
    kind = missing.split("-")[0]
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path, kind=kind)
    message = str(info.value)
    assert missing in message and f"{missing}.gz" in message and str(tmp_path) in message
    # The other kind is still readable.
    other = "t10k" if kind == "train" else "train"
    assert load_fashion_mnist(tmp_path, kind=other).n in (N, 50)


def test_loader_empty_directory_names_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\], train-labels-idx1-ubyte\[\.gz\]"):
        load_fashion_mnist(tmp_path)


def _pair(tmp_path, images, labels, **kw):
    write_idx(tmp_path / "train-images-idx3-ubyte", images, **kw.get("img", {}))
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, **kw.get("lab", {}))


def test_loader_bad_magic_numbers(tmp_path):
    images, labels = synthetic_images(10, 0)
    _pair(tmp_path, images, labels, img=dict(magic=2049))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_fashion_mnist(tmp_path)
    _pair(tmp_path, images, labels, lab=dict(magic=2051))
    with pytest.raises(ValueError, match="magic number 2051, expected 2049"):
        load_fashion_mnist(tmp_path)
    # Swapped files: the labels file where the images should be.
    write_idx(tmp_path / "train-images-idx3-ubyte", labels)
    with pytest.raises(ValueError, match="not an IDX images file"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("which", ["images", "labels"])
def test_loader_truncated_files(tmp_path, gz, which):
    images, labels = synthetic_images(10, 0)
    _pair(tmp_path, images, labels)
    target = tmp_path / f"train-{which}-idx{3 if which == 'images' else 1}-ubyte"
    raw = target.read_bytes()[:-5]
    target.unlink()
    if gz:
        target = target.with_name(target.name + ".gz")
        raw = gzip.compress(raw)
    target.write_bytes(raw)
    with pytest.raises(ValueError, match="is truncated"):
        load_fashion_mnist(tmp_path)


def test_loader_truncated_header_too_long_and_damaged_gzip(tmp_path):
    images, labels = synthetic_images(10, 0)
    _pair(tmp_path, images, labels)
    target = tmp_path / "train-labels-idx1-ubyte"
    target.write_bytes(np.array([2049], ">i4").tobytes())
    with pytest.raises(ValueError, match="truncated.*header"):
        load_fashion_mnist(tmp_path)
    target.write_bytes(np.array([2049, 10], ">i4").tobytes() + labels.tobytes() + b"\x00")
    with pytest.raises(ValueError, match="too long"):
        load_fashion_mnist(tmp_path)
    target.unlink()
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(np.array([2049, 10], ">i4").tobytes() + labels.tobytes())[:-12])
    with pytest.raises(ValueError, match="damaged gzip"):
        load_fashion_mnist(tmp_path)


def test_loader_count_mismatch(tmp_path):
    images, labels = synthetic_images(10, 0)
    _pair(tmp_path, images, labels[:9])
    with pytest.raises(ValueError, match="holds 10 images but .* holds 9 labels"):
        load_fashion_mnist(tmp_path)


def test_loader_labels_outside_0_to_9(tmp_path):
    images, labels = synthetic_images(10, 0)
    labels[4] = 10
    _pair(tmp_path, images, labels)
    with pytest.raises(ValueError, match="label 10 at index 4; labels must be in 0..9"):
        load_fashion_mnist(tmp_path)


def test_loader_wrong_image_size_and_no_images(tmp_path):
    _pair(tmp_path, np.zeros((3, 27, 28)), np.zeros(3))
    with pytest.raises(ValueError, match="27 x 28 pixels, expected 28 x 28"):
        load_fashion_mnist(tmp_path)
    _pair(tmp_path, np.zeros((0, 28, 28)), np.zeros(0))
    with pytest.raises(ValueError, match="holds no images"):
        load_fashion_mnist(tmp_path)


# --------------------------------------------------------------------------- ClassificationData


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(X=np.ones((4, 2), np.int64)), TypeError, "X must have dtype float32 or float64"),
        (dict(X=[[1.0, 2.0]] * 4), TypeError, "X must be a numpy.ndarray"),
        (dict(X=np.ones(4)), ValueError, r"X must be a non-empty matrix"),
        (dict(X=np.ones((4, 0))), ValueError, r"X must be a non-empty matrix"),
        (dict(X=np.array([[1.0, np.nan]] * 4)), ValueError, "X must be finite"),
        (dict(labels=np.zeros(4, np.int32)), TypeError, "labels must have dtype int64"),
        (dict(labels=[0, 1, 0, 1]), TypeError, "labels must be a numpy.ndarray"),
        (dict(labels=np.zeros(3, np.int64)), ValueError, r"labels must have shape \(4,\)"),
        (dict(labels=np.array([0, 1, 2, 0])), ValueError, r"labels must be in \[0, 1\]"),
        (dict(labels=np.array([0, -1, 1, 0])), ValueError, r"labels must be in \[0, 1\]"),
        (dict(classes=["a", "b"]), TypeError, "classes must be a tuple of str"),
        (dict(classes=("a",)), ValueError, "at least 2 classes"),
        (dict(name=3), TypeError, "name must be a str"),
    ],
)
def test_classification_data_checks(change, error, match):
    kwargs = dict(X=np.ones((4, 2)), labels=np.array([0, 1, 0, 1]), classes=("a", "b"), name="t", source="s")
    kwargs.update(change)
    with pytest.raises(error, match=match):
        ClassificationData(**kwargs)


def test_classification_data_uses_arrays_without_copy_and_leaves_them_writeable():
    X = np.ones((4, 2))
    labels = np.array([0, 1, 0, 1])
    data = ClassificationData(X, labels, ("a", "b"))
    assert np.shares_memory(data.X, X) and np.shares_memory(data.labels, labels)
    assert X.flags.writeable and not data.X.flags.writeable
    assert "n=4" in repr(data)


# --------------------------------------------------------------------------- the model


def test_loss_at_zero_is_log_10(train64):
    problem = SoftmaxRegression(train64)
    assert problem.dim == 7850
    loss = problem.loss(np.zeros(problem.dim))
    assert isinstance(loss, float)
    assert loss == pytest.approx(math.log(10), rel=1e-14)
    assert problem.accuracy(np.zeros(problem.dim)) == pytest.approx(np.mean(train64.labels == 0))


def test_gradient_matches_central_differences():
    data = tiny_data(n=25, p=4, k=3, seed=1)
    problem = SoftmaxRegression(data)
    params = np.random.default_rng(2).normal(0, 0.5, problem.dim)
    g = problem.grad(params)
    h = 1e-6
    fd = np.empty(problem.dim)
    for i in range(problem.dim):
        e = np.zeros(problem.dim)
        e[i] = h
        fd[i] = (problem.loss(params + e) - problem.loss(params - e)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_gradient_of_rows_matches_finite_differences_on_the_images(train64):
    """Minibatch gradient = full gradient of the sub-dataset; checked on 40 coordinates of 7850."""
    rows = np.array([3, 17, 17, 150, 199])
    problem = SoftmaxRegression(train64)
    sub = SoftmaxRegression(ClassificationData(np.ascontiguousarray(train64.X[rows]), train64.labels[rows],
                                               train64.classes))
    params = np.random.default_rng(3).normal(0, 0.05, problem.dim)
    g = problem.grad(params, rows)
    np.testing.assert_allclose(g, sub.grad(params), rtol=1e-13, atol=1e-15)
    h = 1e-6
    for i in np.random.default_rng(4).choice(problem.dim, 40, replace=False):
        e = np.zeros(problem.dim)
        e[i] = h
        fd = (sub.loss(params + e) - sub.loss(params - e)) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_gradient_matches_a_plain_formula_and_split_layout():
    data = tiny_data(n=12, p=3, k=4)
    problem = SoftmaxRegression(data)
    params = np.random.default_rng(0).standard_normal(problem.dim)
    W, b = problem.split(params)
    assert W.shape == (3, 4) and b.shape == (4,) and np.shares_memory(W, params)
    np.testing.assert_array_equal(W.ravel(), params[:12])
    Z = data.X @ W + b
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    Y = np.eye(4)[data.labels]
    expected = np.concatenate([(data.X.T @ (P - Y)).ravel(), (P - Y).sum(axis=0)]) / 12
    np.testing.assert_allclose(problem.grad(params), expected, rtol=1e-12, atol=1e-15)
    loss = np.mean(-np.log(P[np.arange(12), data.labels]))
    assert problem.loss(params) == pytest.approx(loss, rel=1e-12)


def test_loss_is_stable_for_huge_logits():
    data = ClassificationData(np.array([[1.0], [1.0]]), np.array([0, 1]), ("a", "b"))
    problem = SoftmaxRegression(data)
    params = np.array([1000.0, 0.0, 0.0, 0.0])  # logits (1000, 0) on both rows
    assert problem.loss(params) == pytest.approx(500.0, rel=1e-12)
    g = problem.grad(params)
    assert np.all(np.isfinite(g))
    # The minibatch loss that training checks for divergence stays finite too (no exp underflow to log(0)).
    assert problem._loss_grad(params, np.array([1]), np.empty(4)) == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(g, [0.5, -0.5, 0.5, -0.5], atol=1e-12)


def test_float32_stays_float32():
    data = tiny_data("float32")
    problem = SoftmaxRegression(data)
    params = np.full(problem.dim, 0.1, np.float32)
    g = problem.grad(params, np.arange(5))
    assert g.dtype == np.float32
    assert isinstance(problem.loss(params), float)
    out = np.empty(problem.dim, np.float32)
    assert problem.grad(params, out=out) is out
    ref = SoftmaxRegression(tiny_data("float64")).grad(params.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p, x: p.loss(x.astype(np.float32)), TypeError, "params must have the dtype of the data"),
        (lambda p, x: p.loss(x[:-1]), ValueError, r"params must have shape \(18,\)"),
        (lambda p, x: p.loss(list(x)), TypeError, "params must be a numpy.ndarray"),
        (lambda p, x: p.loss(np.zeros(18, np.int64)), TypeError, "params must have dtype float32 or float64"),
        (lambda p, x: p.grad(x, [0, 1]), TypeError, "rows must be a numpy.ndarray of integer"),
        (lambda p, x: p.grad(x, np.array([0.0])), TypeError, "rows must be a numpy.ndarray of integer"),
        (lambda p, x: p.grad(x, np.array([], np.int64)), ValueError, "rows must be a non-empty 1-D"),
        (lambda p, x: p.grad(x, np.zeros((2, 2), np.int64)), ValueError, "rows must be a non-empty 1-D"),
        (lambda p, x: p.grad(x, np.array([0, 30])), ValueError, r"rows must be in \[0, 29\]"),
        (lambda p, x: p.grad(x, np.array([-1])), ValueError, r"rows must be in \[0, 29\]"),
        (lambda p, x: p.grad(x, out=np.empty(18, np.float32)), TypeError, "out must have the dtype"),
        (lambda p, x: p.grad(x, out=np.empty(17)), ValueError, r"out must have shape \(18,\)"),
        (lambda p, x: p.grad(x, out=x), ValueError, "out must not share memory with params"),
        (lambda p, x: p.accuracy(x, "test"), TypeError, "data must be a ClassificationData"),
        (lambda p, x: p.accuracy(x, tiny_data(p=4)), ValueError, "data must have the problem's 5 features"),
        (lambda p, x: p.accuracy(x, tiny_data(k=4)), ValueError, "data must have the problem's 5 features"),
        (lambda p, x: p.accuracy(x, tiny_data("float32")), TypeError, "data must have the problem's dtype"),
        (lambda p, x: SoftmaxRegression(np.ones((3, 2))), TypeError, "data must be a ClassificationData"),
    ],
)
def test_model_bad_arguments(call, error, match):
    problem = SoftmaxRegression(tiny_data())
    with pytest.raises(error, match=match):
        call(problem, np.zeros(problem.dim))


def test_read_only_out_is_refused():
    problem = SoftmaxRegression(tiny_data())
    out = np.empty(problem.dim)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        problem.grad(np.zeros(problem.dim), out=out)


# --------------------------------------------------------------------------- training


def test_rmsprop_learns_the_synthetic_images(fmnist_dir):
    train = load_fashion_mnist(fmnist_dir)
    test = load_fashion_mnist(fmnist_dir, kind="t10k")
    problem = SoftmaxRegression(train)
    run = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=32, epochs=5, seed=0, test=test)
    assert isinstance(run, SoftmaxResult)
    assert run.diverged_at is None and not run.diverged
    per_epoch = math.ceil(N / 32)  # 7, the last minibatch holds 8 rows
    np.testing.assert_array_equal(run.loss_steps, per_epoch * np.arange(1, 6))
    assert run.loss_curve.dtype == np.float64 and run.loss_curve.shape == (5,)
    assert run.loss_curve[-1] < 0.5 * math.log(10) and run.loss_curve[-1] < run.loss_curve[0]
    assert run.final_loss == run.loss_curve[-1] == pytest.approx(problem.loss(run.params))
    assert run.accuracy > 0.9 and run.accuracy == problem.accuracy(run.params)
    assert run.test_accuracy.shape == (5,) and run.test_accuracy[-1] > 0.9
    assert run.params.dtype == np.float32 and run.params.shape == (7850,)
    assert run.state.t == 5 * per_epoch and run.state.s.dtype == np.float32
    assert run.optimizer == rn.RMSProp(lr=0.01) and (run.epochs, run.batch_size) == (5, 32)
    assert run.sec_per_epoch > 0


def test_record_every_and_the_end_point():
    problem = SoftmaxRegression(tiny_data(n=30))
    run = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=4, epochs=2, record_every=3)
    # 8 updates per epoch (the last of 2 rows), 16 in all: every 3rd, then the end.
    np.testing.assert_array_equal(run.loss_steps, [3, 6, 9, 12, 15, 16])
    assert run.test_accuracy is None and run.record_every == 3
    run = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=30, epochs=3, record_every=1)
    np.testing.assert_array_equal(run.loss_steps, [1, 2, 3])


def test_training_is_reproducible_bit_for_bit_and_seed_matters(fmnist_dir):
    problem = SoftmaxRegression(load_fashion_mnist(fmnist_dir, limit=120))
    runs = [train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=16, epochs=2, seed=s) for s in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].params, runs[1].params)
    np.testing.assert_array_equal(runs[0].loss_curve, runs[1].loss_curve)
    assert not np.array_equal(runs[0].params, runs[2].params)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_minibatch_order_is_the_documented_shuffle(backend):
    """Each epoch: default_rng(seed).permutation(n), in batches; compared with a hand-written loop
    (bit for bit by the Python loop; to rounding by the compiled one, whose products sum in another order)."""
    problem = SoftmaxRegression(tiny_data(n=23))
    opt = rn.RMSProp(lr=0.05, gamma=0.9)
    run = train_softmax(opt, problem, batch_size=5, epochs=3, seed=11, backend=backend)
    params = np.zeros(problem.dim)
    state = opt.init(params)
    rng = np.random.default_rng(11)
    for _ in range(3):
        order = rng.permutation(23)
        for first in range(0, 23, 5):
            opt.step(params, problem.grad(params, order[first:first + 5]), state)
    if backend == "reference":
        np.testing.assert_array_equal(run.params, params)
    else:
        np.testing.assert_allclose(run.params, params, rtol=1e-12, atol=1e-14)


def test_float32_training_stays_float32():
    problem = SoftmaxRegression(tiny_data("float32"))
    run = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=8, epochs=2)
    assert run.params.dtype == np.float32 and run.state.s.dtype == np.float32
    assert run.loss_curve.dtype == np.float64


@pytest.mark.parametrize("dtype, lr", [("float64", 1e307), ("float32", 1e37)])
def test_divergence_is_reported_not_raised(dtype, lr, recwarn):
    rng = np.random.default_rng(0)
    data = ClassificationData(rng.random((40, 50)).astype(dtype), rng.integers(0, 3, 40), ("a", "b", "c"))
    run = train_softmax(rn.RMSProp(lr=lr), SoftmaxRegression(data), batch_size=8, epochs=3)
    assert run.diverged and 1 <= run.diverged_at < 15
    assert run.loss_steps[-1] == run.diverged_at and not math.isfinite(run.final_loss)
    assert run.state.t == run.diverged_at
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_training_does_not_mutate_the_data(fmnist_dir):
    data = load_fashion_mnist(fmnist_dir, dtype="float64", limit=100)
    X, labels = data.X.copy(), data.labels.copy()
    test = load_fashion_mnist(fmnist_dir, kind="t10k", dtype="float64")
    tX = test.X.copy()
    problem = SoftmaxRegression(data)
    assert problem.data is data
    train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=10, epochs=1, test=test)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(test.X, tX)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(opt="rmsprop"), TypeError, "opt must be an rmsnum optimizer"),
        (dict(problem=tiny_data()), TypeError, "problem must be a SoftmaxRegression"),
        (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1"),
        (dict(batch_size=31), ValueError, r"batch_size must be in \[1, 30\]"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an integer"),
        (dict(epochs=0), ValueError, "epochs must be an integer >= 1"),
        (dict(epochs=None), TypeError, "epochs must be an integer"),
        (dict(seed=-1), ValueError, "seed must be an integer >= 0"),
        (dict(seed=2**63), ValueError, r"seed must be in \[0, 2\*\*63\)"),
        (dict(seed="0"), TypeError, "seed must be an integer"),
        (dict(record_every=0), ValueError, "record_every must be an integer >= 1"),
        (dict(record_every=1.5), TypeError, "record_every must be an integer"),
        (dict(test=np.ones((3, 5))), TypeError, "test must be a ClassificationData"),
        (dict(test=tiny_data(p=6)), ValueError, "test must have the problem's 5 features"),
        (dict(test=tiny_data("float32")), TypeError, "test must have the problem's dtype"),
    ],
)
def test_training_bad_arguments(change, error, match):
    kwargs = dict(opt=rn.RMSProp(lr=0.01), problem=SoftmaxRegression(tiny_data()), batch_size=5, epochs=1)
    kwargs.update(change)
    positional = [kwargs.pop(k) for k in ("opt", "problem", "batch_size", "epochs")]
    with pytest.raises(error, match=match):
        train_softmax(*positional, **kwargs)


def test_every_rule_trains():
    problem = SoftmaxRegression(tiny_data(n=60, p=4, k=3, seed=5))
    for opt in (rn.SGD(lr=0.5), rn.Momentum(lr=0.1, beta=0.9), rn.Adagrad(lr=0.3), rn.Adam(lr=0.05),
                rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True)):
        run = train_softmax(opt, problem, batch_size=10, epochs=5)
        assert run.diverged_at is None and run.final_loss < math.log(3), opt


# --------------------------------------------------------------------------- the compiled loop against the Python one

AGREE = {"float64": dict(rtol=1e-12), "float32": dict(rtol=1e-5)}
OPTIMIZERS = {
    "rmsprop": rn.RMSProp(lr=0.02, gamma=0.9),
    "rmsprop-centered": rn.RMSProp.torch(lr=0.01, centered=True),
    "rmsprop-momentum": rn.RMSProp.torch(lr=0.01, momentum=0.9),
    "rmsprop-keras-centered-momentum": rn.RMSProp.keras(learning_rate=0.01, momentum=0.5, centered=True),
    "rmsprop-bias-correction": rn.RMSProp(lr=0.01, bias_correction=True, weight_decay=0.01),
    "adam": rn.Adam(lr=0.01),
    "adamw-amsgrad": rn.AdamW.torch(lr=0.01, amsgrad=True),
    "sgd": rn.SGD(lr=0.3),
    "momentum": rn.Momentum(lr=0.1, beta=0.9),
    "adagrad": rn.Adagrad(lr=0.2),
}


def _close(actual, desired, dtype, scale):
    """Agreement to rounding: relative to each value, with an absolute floor at the arrays' scale."""
    rtol = AGREE[dtype]["rtol"]
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_loop_agrees_with_the_python_loop(name, dtype):
    """backend="cpu" (one kernel call) against backend="reference" (opt.step in Python): a last minibatch
    that is smaller, a record interval that does not divide the updates, a test set."""
    opt = OPTIMIZERS[name]
    problem = SoftmaxRegression(tiny_data(dtype, n=47, p=6, k=4, seed=3))
    test = tiny_data(dtype, n=21, p=6, k=4, seed=4)
    runs = [train_softmax(opt, problem, batch_size=10, epochs=3, seed=5, record_every=4, test=test, backend=b)
            for b in ("cpu", "reference")]
    cpu, ref = runs
    assert (cpu.backend, ref.backend) == ("cpu", "reference")
    assert cpu.diverged_at is None and ref.diverged_at is None
    np.testing.assert_array_equal(cpu.loss_steps, [4, 8, 12, 15])
    np.testing.assert_array_equal(cpu.loss_steps, ref.loss_steps)
    assert cpu.params.dtype == ref.params.dtype == np.dtype(dtype)
    scale = float(np.max(np.abs(ref.params)))
    _close(cpu.params, ref.params, dtype, scale)
    _close(cpu.loss_curve, ref.loss_curve, dtype, 0.0)
    np.testing.assert_array_equal(cpu.test_accuracy, ref.test_accuracy)
    assert cpu.accuracy == ref.accuracy
    assert cpu.state.t == ref.state.t == 15
    assert cpu.state.arrays.keys() == ref.state.arrays.keys()
    for slot, arr in ref.state.arrays.items():
        if arr is not None:
            assert cpu.state.arrays[slot].dtype == arr.dtype
            _close(cpu.state.arrays[slot], arr, dtype, float(np.max(np.abs(arr))))
    for attr in ("d1", "d2"):
        assert getattr(cpu.state, attr) == pytest.approx(getattr(ref.state, attr), rel=AGREE[dtype]["rtol"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_loop_agrees_on_the_synthetic_images(fmnist_dir, dtype):
    """784 features, 10 classes: the sizes the kernel's loops are written for."""
    problem = SoftmaxRegression(load_fashion_mnist(fmnist_dir, dtype=dtype, limit=90))
    test = load_fashion_mnist(fmnist_dir, kind="t10k", dtype=dtype)
    cpu, ref = (train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=16, epochs=2, seed=1, test=test,
                              backend=b) for b in ("cpu", "reference"))
    _close(cpu.params, ref.params, dtype, float(np.max(np.abs(ref.params))))
    _close(cpu.loss_curve, ref.loss_curve, dtype, 0.0)
    np.testing.assert_array_equal(cpu.test_accuracy, ref.test_accuracy)


@pytest.mark.parametrize("dtype, lr", [("float64", 1e307), ("float32", 1e37)])
def test_both_backends_stop_at_the_same_divergence(dtype, lr):
    rng = np.random.default_rng(0)
    data = ClassificationData(rng.random((40, 50)).astype(dtype), rng.integers(0, 3, 40), ("a", "b", "c"))
    cpu, ref = (train_softmax(rn.RMSProp(lr=lr), SoftmaxRegression(data), batch_size=8, epochs=3, backend=b)
                for b in ("cpu", "reference"))
    assert cpu.diverged_at == ref.diverged_at is not None
    np.testing.assert_array_equal(cpu.loss_steps, ref.loss_steps)
    assert cpu.state.t == ref.state.t == cpu.diverged_at


def test_bad_backend_is_refused_before_any_work(monkeypatch):
    from rmsnum.backends import softmax

    def refuse(*args, **kwargs):
        raise AssertionError("no kernel may run for a bad backend")

    monkeypatch.setattr(softmax, "train", refuse)
    problem = SoftmaxRegression(tiny_data())
    for backend in ("cuda", "CPU", None):
        with pytest.raises(ValueError, match=r"backend must be one of \('cpu', 'reference'\), got"):
            train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=5, epochs=1, backend=backend)


def test_hyperparameters_the_dtype_cannot_hold_are_refused_before_any_work():
    problem = SoftmaxRegression(tiny_data("float32"))
    for backend in ("cpu", "reference"):
        with pytest.raises(ValueError, match="lr=1e-50 rounds to 0 in float32"):
            train_softmax(rn.RMSProp(lr=1e-50), problem, batch_size=5, epochs=1, backend=backend)


# --------------------------------------------------------------------------- the real data, when present


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"needs a local copy of Fashion-MNIST in {REAL_DIR}")
def test_real_fashion_mnist():
    train = load_fashion_mnist(REAL_DIR, limit=6000)
    test = load_fashion_mnist(REAL_DIR, kind="t10k")
    assert train.X.shape == (6000, 784) and test.X.shape == (10000, 784)
    assert set(np.unique(test.labels)) == set(range(10)) and np.all(np.bincount(test.labels) == 1000)
    problem = SoftmaxRegression(train)
    assert problem.loss(np.zeros(problem.dim)) == pytest.approx(math.log(10), rel=1e-6)
    run = train_softmax(rn.RMSProp(lr=0.001), problem, batch_size=100, epochs=2, test=test)
    assert run.diverged_at is None
    assert run.test_accuracy[-1] > 0.7
