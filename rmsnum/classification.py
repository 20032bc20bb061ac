"""Softmax regression on Fashion-MNIST: a real machine-learning problem for RMSProp.

:func:`load_fashion_mnist` reads a local copy of the dataset (the four IDX
files, gzipped or not) and never touches the network;
:class:`SoftmaxRegression` is multinomial logistic regression with its
parameters in one flat vector, so every :class:`~rmsnum.Optimizer` can update
it in place; :func:`train_softmax` is the minibatch training loop.

Training is a regular problem of the engine: on ``backend="cpu"`` (the
default) every epoch, minibatch gradient, update and recorded point is one call
of a compiled kernel (:mod:`rmsnum.backends.softmax`), instantiated for the
optimizer's rule like the other CPU kernels. ``backend="reference"`` runs the
plain loop in Python (NumPy's matrix products for the gradients and
:meth:`~rmsnum.Optimizer.step` for the updates), the oracle the kernel is
tested against.
"""

from __future__ import annotations

import gzip
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validation as v
from .optimizers import Optimizer, OptimizerState

BACKENDS = ("cpu", "reference")
"""The backends of :func:`train_softmax`."""

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist"
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IMAGE_SHAPE = (28, 28)
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class ClassificationData:
    """A classification dataset: features ``X`` (n, p) and integer ``labels`` (n,).

    The arrays are used without copies or casts; the dataset keeps read-only
    views of them.

    Attributes
    ----------
    X : numpy.ndarray, shape (n, p)
        Features: C-contiguous float32 or float64, finite, n >= 1 and p >= 1.
        Its dtype is the working dtype of :class:`SoftmaxRegression`.
    labels : numpy.ndarray of int64, shape (n,)
        Class indices in ``[0, n_classes)``.
    classes : tuple of str
        The class names, at least 2; ``labels`` index into it.
    name : str
        A label, e.g. ``"Fashion-MNIST train"``.
    source : str
        Where the data was read from, or ``"synthetic"``.

    Raises
    ------
    TypeError
        If ``X`` is not a float32/float64 ndarray, ``labels`` not an int64
        ndarray, ``classes`` not a tuple of str, or ``name``/``source`` not str.
    ValueError
        For wrong shapes, non-finite features, fewer than 2 classes or labels
        outside ``[0, n_classes)``.

    Examples
    --------
    >>> import numpy as np
    >>> data = ClassificationData(np.eye(3), np.array([0, 1, 1]), ("no", "yes"), "toy", "synthetic")
    >>> data.n, data.features, data.n_classes
    (3, 3, 2)
    """

    X: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    classes: tuple[str, ...]
    name: str = "classification data"
    source: str = "synthetic"

    def __post_init__(self) -> None:
        X = v.float_array("X", self.X)
        labels = self.labels
        if not isinstance(labels, np.ndarray):
            raise TypeError(f"labels must be a numpy.ndarray of int64, got {type(labels).__name__}")
        if labels.dtype != np.int64:
            raise TypeError(f"labels must have dtype int64, got {labels.dtype}; convert it explicitly "
                            "with labels.astype(numpy.int64) (rmsnum never casts silently)")
        classes = self.classes
        if not isinstance(classes, tuple) or not all(isinstance(c, str) for c in classes):
            raise TypeError(f"classes must be a tuple of str, got {classes!r}")
        for label, value in (("name", self.name), ("source", self.source)):
            if not isinstance(value, str):
                raise TypeError(f"{label} must be a str, got {type(value).__name__}")
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must be a non-empty matrix of shape (n, p), got shape {X.shape}")
        if labels.shape != (X.shape[0],):
            raise ValueError(f"labels must have shape ({X.shape[0]},), one per row of X, got shape {labels.shape}")
        if len(classes) < 2:
            raise ValueError(f"classes must name at least 2 classes, got {classes!r}")
        bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
        if bad.size:
            raise ValueError(f"labels must be in [0, {len(classes) - 1}] (one per class), got {labels[bad[0]]} "
                             f"at index {bad[0]}")
        if not np.all(np.isfinite(X)):
            where = tuple(np.argwhere(~np.isfinite(X))[0].tolist())
            raise ValueError(f"X must be finite, got {X[where]} at index {where}")
        for attr, arr in (("X", X), ("labels", labels)):
            view = arr.view()
            view.flags.writeable = False
            object.__setattr__(self, attr, view)

    def __repr__(self) -> str:
        return (f"ClassificationData(n={self.n}, features={self.features}, n_classes={self.n_classes}, "
                f"dtype={self.dtype}, name={self.name!r})")

    @property
    def n(self) -> int:
        """Number of rows (examples)."""
        return self.X.shape[0]

    @property
    def features(self) -> int:
        """Number of features p."""
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes k."""
        return len(self.classes)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``X``."""
        return self.X.dtype


def _read_idx(path: Path, magic: int, ndim: int) -> tuple[tuple[int, ...], np.ndarray]:
    """The dimensions and the uint8 payload of an IDX file (gzipped or not)."""
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path} is a damaged gzip file: {err}") from err
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: {len(raw)} bytes, shorter than the {header}-byte IDX header")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise ValueError(f"{path} is not an IDX {kind} file: magic number {got}, expected {magic}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = math.prod(dims)
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "too long"
        raise ValueError(f"{path} is {what}: dimensions {dims} need {expected} bytes of data after the header, "
                         f"got {payload}")
    return dims, np.frombuffer(raw, dtype=np.uint8, offset=header)


def _find(directory: Path, stem: str, names: tuple[str, ...]) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    expected = ", ".join(f"{n}[.gz]" for n in names)
    raise FileNotFoundError(f"{stem} (or {stem}.gz) was not found in {str(directory)!r}; that directory must "
                            f"hold {expected} (the Fashion-MNIST files from {FASHION_MNIST_URL})")


def load_fashion_mnist(
    path: str | os.PathLike[str],
    *,
    kind: str = "train",
    dtype: Any = np.float32,
    limit: int | None = None,
) -> ClassificationData:
    """Fashion-MNIST from a local directory of IDX files; never touches the network.

    The directory holds the dataset's standard files, each gzipped (``.gz``,
    as distributed) or not: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte``. They are parsed here with NumPy: an IDX file
    is a big-endian int32 magic number (2051 for images, 2049 for labels),
    one big-endian int32 per dimension, then unsigned bytes. Each 28 x 28
    image becomes a row of 784 pixels scaled to [0, 1] (divided by 255 in
    ``dtype``), in row-major order.

    Parameters
    ----------
    path : str or path-like
        The directory holding the files.
    kind : {"train", "t10k"}, default "train"
        The 60 000 training images or the 10 000 test images.
    dtype : float32 or float64, default float32
        The dtype of ``X``.
    limit : int, optional
        Keep only the first ``limit`` (>= 1) rows; all of them when None or
        when ``limit`` exceeds their number.

    Returns
    -------
    ClassificationData
        ``X`` (n, 784) in ``dtype``, ``labels`` (n,) int64 in 0..9,
        ``classes`` :data:`FASHION_MNIST_CLASSES`; both arrays read-only.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like, ``kind`` not a str, ``dtype``
        not float32/float64 or ``limit`` not an integer.
    ValueError
        If ``kind`` is not "train" or "t10k", ``limit`` < 1, or a file is
        damaged: wrong magic number, truncated or too long, images that are
        not 28 x 28, no images, image and label counts that differ, or labels
        outside 0..9.
    FileNotFoundError
        If ``path`` is not a directory or a file is missing; the message names
        the expected files and the path.

    Notes
    -----
    Fashion-MNIST: H. Xiao, K. Rasul and R. Vollgraf, *Fashion-MNIST: a Novel
    Image Dataset for Benchmarking Machine Learning Algorithms*, 2017,
    arXiv:1708.07747; https://github.com/zalandoresearch/fashion-mnist,
    released under the MIT licence. The class names are
    :data:`FASHION_MNIST_CLASSES`.

    Examples
    --------
    >>> data = load_fashion_mnist("data/fashion-mnist", kind="t10k")  # doctest: +SKIP
    >>> data.X.shape, data.X.dtype, data.labels[:5], data.classes[9]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([9, 2, 1, 1, 6]), 'Ankle boot')
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like directory, got {type(path).__name__}")
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, one of {tuple(FASHION_MNIST_FILES)}, got {type(kind).__name__}")
    if kind not in FASHION_MNIST_FILES:
        raise ValueError(f"kind must be one of {tuple(FASHION_MNIST_FILES)}, got {kind!r}")
    dt = v.float_dtype("dtype", dtype)
    if limit is not None:
        limit = v.integer("limit", limit, low=1)
    directory = Path(path)
    names = FASHION_MNIST_FILES[kind]
    if not directory.is_dir():
        expected = ", ".join(f"{n}[.gz]" for n in names)
        raise FileNotFoundError(f"path={str(directory)!r} is not a directory; it must be the directory holding "
                                f"{expected} (the Fashion-MNIST files from {FASHION_MNIST_URL})")
    images_path = _find(directory, names[0], names)
    labels_path = _find(directory, names[1], names)
    dims, pixels = _read_idx(images_path, IDX_IMAGES_MAGIC, 3)
    (n_labels,), raw_labels = _read_idx(labels_path, IDX_LABELS_MAGIC, 1)
    n = dims[0]
    if dims[1:] != _IMAGE_SHAPE:
        raise ValueError(f"{images_path} holds images of {dims[1]} x {dims[2]} pixels, expected 28 x 28")
    if n == 0:
        raise ValueError(f"{images_path} holds no images")
    if n_labels != n:
        raise ValueError(f"{images_path} holds {n} images but {labels_path} holds {n_labels} labels")
    if raw_labels.size and raw_labels.max() >= len(FASHION_MNIST_CLASSES):
        bad = int(np.flatnonzero(raw_labels >= len(FASHION_MNIST_CLASSES))[0])
        raise ValueError(f"{labels_path} has label {raw_labels[bad]} at index {bad}; labels must be in 0..9")
    rows = n if limit is None else min(limit, n)
    p = _IMAGE_SHAPE[0] * _IMAGE_SHAPE[1]
    X = pixels[: rows * p].reshape(rows, p).astype(dt)
    X /= dt.type(255)
    labels = raw_labels[:rows].astype(np.int64)
    return ClassificationData(
        X=X,
        labels=labels,
        classes=FASHION_MNIST_CLASSES,
        name=f"Fashion-MNIST {kind} (Xiao, Rasul & Vollgraf 2017, MIT)",
        source=f"{images_path}, {labels_path}",
    )


# --------------------------------------------------------------------------- the model


def _log_softmax_terms(Z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy ``logsumexp(Z_i) - Z_i[label_i]``, stably, in Z's dtype."""
    m = Z.max(axis=1)
    lse = m + np.log(np.exp(Z - m[:, None]).sum(axis=1))
    return lse - Z[np.arange(Z.shape[0]), labels]


class SoftmaxRegression:
    r"""Multinomial logistic (softmax) regression on a :class:`ClassificationData`.

    Logits :math:`Z = XW + b` with ``W`` of shape (p, k) and ``b`` of shape
    (k,); the loss is the mean cross-entropy
    :math:`\frac1n\sum_i \big(\log\sum_j e^{Z_{ij}} - Z_{i y_i}\big)`.
    The parameters are one flat vector of :attr:`dim` = p k + k numbers:
    ``W`` in row-major order, then ``b`` (see :meth:`split`), so any
    :class:`~rmsnum.Optimizer` updates them in place.

    Parameters
    ----------
    data : ClassificationData
        Used without copies; its dtype (float32 or float64) is the working
        dtype, and parameters must have it.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> problem = SoftmaxRegression(ClassificationData(X, np.array([0, 1, 2]), ("a", "b", "c")))
    >>> problem.dim
    9
    >>> params = np.zeros(problem.dim)
    >>> round(problem.loss(params), 12) == round(float(np.log(3)), 12)
    True
    >>> dW, db = problem.split(problem.grad(params, rows=np.array([0, 1])))
    >>> dW * 6, db * 6
    (array([[ 1., -2.,  1.],
           [-2.,  1.,  1.]]), array([-1., -1.,  2.]))
    """

    def __init__(self, data: ClassificationData) -> None:
        if not isinstance(data, ClassificationData):
            raise TypeError(f"data must be a ClassificationData, got {type(data).__name__}")
        self.data = data

    def __repr__(self) -> str:
        return (f"SoftmaxRegression(n={self.n}, features={self.features}, n_classes={self.n_classes}, "
                f"dtype={self.dtype}, data={self.data.name!r})")

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.data.n

    @property
    def features(self) -> int:
        """Number of features p."""
        return self.data.features

    @property
    def n_classes(self) -> int:
        """Number of classes k."""
        return self.data.n_classes

    @property
    def dim(self) -> int:
        """Number of parameters, p k + k."""
        return (self.features + 1) * self.n_classes

    @property
    def dtype(self) -> np.dtype:
        """The data's dtype, the working dtype."""
        return self.data.dtype

    def _check_params(self, params: Any) -> np.ndarray:
        params = v.float_array("params", params)
        if params.dtype != self.dtype:
            raise TypeError(f"params must have the dtype of the data ({self.dtype}), got {params.dtype}; "
                            "convert one of them explicitly (rmsnum never casts silently)")
        if params.shape != (self.dim,):
            raise ValueError(f"params must have shape ({self.dim},): W ({self.features} x {self.n_classes}, "
                             f"row-major) then b ({self.n_classes}); got shape {params.shape}")
        return params

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(W, b)`` of the flat parameters: W (p, k) and b (k,).

        >>> import numpy as np
        >>> problem = SoftmaxRegression(ClassificationData(np.ones((2, 3)), np.array([0, 1]), ("a", "b")))
        >>> W, b = problem.split(np.arange(8.0))
        >>> W.shape, b
        ((3, 2), array([6., 7.]))
        """
        params = self._check_params(params)
        split = self.features * self.n_classes
        return params[:split].reshape(self.features, self.n_classes), params[split:]

    def _logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        split = self.features * self.n_classes
        W = params[:split].reshape(self.features, self.n_classes)
        Z = X @ W
        Z += params[split:]
        return Z

    def loss(self, params: np.ndarray) -> float:
        """Mean cross-entropy over all rows of the data.

        The logits are computed in the working dtype; the log-sum-exp (with
        the row maximum subtracted) and the mean are in float64. Non-finite
        parameters give a non-finite loss, without warnings.

        Parameters
        ----------
        params : numpy.ndarray, shape (dim,)
            In the data's dtype.

        Returns
        -------
        float
        """
        params = self._check_params(params)
        with np.errstate(all="ignore"):
            Z = self._logits(params, self.data.X).astype(np.float64)
            return float(np.mean(_log_softmax_terms(Z, self.data.labels)))

    def _loss_grad(self, params: np.ndarray, rows: np.ndarray | None, out: np.ndarray) -> float:
        """Write the gradient over ``rows`` into ``out``; return the minibatch loss. No checks."""
        dt = self.dtype
        X = self.data.X if rows is None else self.data.X[rows]
        labels = self.data.labels if rows is None else self.data.labels[rows]
        b = X.shape[0]
        split = self.features * self.n_classes
        with np.errstate(all="ignore"):
            Z = self._logits(params, X)
            Z -= Z.max(axis=1)[:, None]
            at_label = Z[np.arange(b), labels]  # a copy, taken before the exponential
            np.exp(Z, out=Z)
            total = Z.sum(axis=1)
            batch_loss = float(np.mean(np.log(total) - at_label))
            Z /= total[:, None]  # softmax probabilities P
            Z[np.arange(b), labels] -= dt.type(1)
            Z /= dt.type(b)
            np.matmul(X.T, Z, out=out[:split].reshape(self.features, self.n_classes))
            np.sum(Z, axis=0, out=out[split:])
        return batch_loss

    def grad(self, params: np.ndarray, rows: np.ndarray | None = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient of the mean cross-entropy over the given rows, in the data's dtype.

        ``(X_r^T (P - Y), sum of the rows of (P - Y)) / |r|``, flattened as
        the parameters, where ``P`` is the softmax of the logits of rows ``r``
        and ``Y`` their one-hot labels. Everything is computed in the working
        dtype; nothing is cast.

        Parameters
        ----------
        params : numpy.ndarray, shape (dim,)
            In the data's dtype.
        rows : numpy.ndarray of int, optional
            Indices of the rows (a minibatch), 1-D, non-empty, each in
            ``[0, n)``; repeats count repeatedly. All rows when None.
        out : numpy.ndarray, shape (dim,), optional
            Where to write the gradient (writeable, the data's dtype, not
            sharing memory with ``params``); a new array when None.

        Returns
        -------
        numpy.ndarray, shape (dim,)
            ``out`` when given.
        """
        params = self._check_params(params)
        if rows is not None:
            if not isinstance(rows, np.ndarray) or not np.issubdtype(rows.dtype, np.integer):
                raise TypeError(f"rows must be a numpy.ndarray of integer row indices, got "
                                f"{getattr(rows, 'dtype', type(rows).__name__)}")
            if rows.ndim != 1 or rows.size == 0:
                raise ValueError(f"rows must be a non-empty 1-D array of row indices, got shape {rows.shape}")
            if rows.min() < 0 or rows.max() >= self.n:
                raise ValueError(f"rows must be in [0, {self.n - 1}], got values from {rows.min()} to {rows.max()}")
        if out is None:
            out = np.empty(self.dim, dtype=self.dtype)
        else:
            out = v.float_array("out", out)
            if out.dtype != self.dtype:
                raise TypeError(f"out must have the dtype of the data ({self.dtype}), got {out.dtype}")
            if out.shape != (self.dim,):
                raise ValueError(f"out must have shape ({self.dim},), got {out.shape}")
            if not out.flags.writeable:
                raise ValueError("out must be writeable")
            if np.may_share_memory(out, params):
                raise ValueError("out must not share memory with params")
        self._loss_grad(params, rows, out)
        return out

    def accuracy(self, params: np.ndarray, data: ClassificationData | None = None) -> float:
        """Fraction of rows whose largest logit is at their label.

        Parameters
        ----------
        params : numpy.ndarray, shape (dim,)
            In the data's dtype.
        data : ClassificationData, optional
            Other data with the same features, classes and dtype (e.g. a test
            set); the problem's own data when None.

        Returns
        -------
        float
            In [0, 1]. Ties go to the first class; non-finite logits count as
            whatever ``numpy.argmax`` makes of them.
        """
        params = self._check_params(params)
        data = self._check_other("data", data)
        with np.errstate(all="ignore"):
            predicted = np.argmax(self._logits(params, data.X), axis=1)
        return float(np.mean(predicted == data.labels))

    def _check_other(self, name: str, data: Any) -> ClassificationData:
        if data is None:
            return self.data
        if not isinstance(data, ClassificationData):
            raise TypeError(f"{name} must be a ClassificationData or None, got {type(data).__name__}")
        if data.features != self.features or data.classes != self.data.classes:
            raise ValueError(f"{name} must have the problem's {self.features} features and classes "
                             f"{self.data.classes}, got {data.features} features and classes {data.classes}")
        if data.dtype != self.dtype:
            raise TypeError(f"{name} must have the problem's dtype {self.dtype}, got {data.dtype}")
        return data


# --------------------------------------------------------------------------- training


@dataclass(eq=False)
class SoftmaxResult:
    """A minibatch training run of :func:`train_softmax`.

    Attributes
    ----------
    loss_curve : numpy.ndarray of float64
        Full-data training loss at each recorded point (the last one at the
        end of the run; not finite for a diverged run).
    loss_steps : numpy.ndarray of int64
        Updates done at those points.
    accuracy : float
        Training accuracy at the end.
    test_accuracy : numpy.ndarray of float64 or None
        Accuracy on the ``test`` data at each recorded point (last: the
        end); None without ``test``.
    params : numpy.ndarray, shape (dim,)
        Final parameters in the data's dtype (W row-major, then b).
    diverged_at : int or None
        Updates done when a loss (of a minibatch, or over the whole data) was
        first not finite; the run stopped there. None when it stayed finite.
    sec_per_epoch : float
        Wall time of the updates (minibatch gradients and steps; not the
        recorded evaluations) per epoch done.
    optimizer : Optimizer
    epochs, batch_size : int
        As requested.
    state : OptimizerState
        The optimizer's final state.
    record_every : int
        Updates between recorded points.
    seed : int
    backend : str
        Where it ran: "cpu" (the compiled loop) or "reference".
    """

    loss_curve: np.ndarray
    loss_steps: np.ndarray
    accuracy: float
    test_accuracy: np.ndarray | None
    params: np.ndarray
    diverged_at: int | None
    sec_per_epoch: float
    optimizer: Optimizer
    epochs: int
    batch_size: int
    state: OptimizerState | None = field(default=None, repr=False)
    record_every: int = 0
    seed: int = 0
    backend: str = "cpu"

    @property
    def final_loss(self) -> float:
        """The full-data loss at the end of the run."""
        return float(self.loss_curve[-1])

    @property
    def diverged(self) -> bool:
        """True when the run stopped on a non-finite loss."""
        return self.diverged_at is not None


def train_softmax(
    opt: Optimizer,
    problem: SoftmaxRegression,
    batch_size: int,
    epochs: int,
    *,
    seed: int | None = 0,
    record_every: int | None = None,
    test: ClassificationData | None = None,
    backend: str = "cpu",
) -> SoftmaxResult:
    """Train a softmax regression with minibatches.

    The parameters start at zero. Every epoch visits the rows in a new random
    order (``numpy.random.default_rng(seed).permutation``, one per epoch) in
    minibatches of ``batch_size``; the last, smaller one is kept when the size
    does not divide the data. Each minibatch gives the mean gradient over its
    rows (:meth:`SoftmaxRegression.grad`) and one update of ``opt``, as
    ``opt.step(params, g, state)`` would do it.

    On ``backend="cpu"`` the whole run (every epoch, minibatch gradient,
    update and recorded point) is one call of a compiled kernel, for any rule
    and option of any optimizer; ``backend="reference"`` runs the same loop in
    Python around NumPy and :meth:`~rmsnum.Optimizer.step`, the oracle of the
    tests. The two agree to rounding (their matrix products sum in different
    orders).

    A minibatch loss or recorded loss that is not finite stops the run; the
    updates done are reported in ``diverged_at`` and nothing is raised. The
    same arguments give bit-identical results.

    Parameters
    ----------
    opt : Optimizer
        E.g. ``RMSProp(lr=0.01)``.
    problem : SoftmaxRegression
        Its dtype (float32 or float64) is the working dtype.
    batch_size : int
        Rows per minibatch, in [1, n].
    epochs : int
        Passes over the data, >= 1.
    seed : int, default 0
        Seeds the shuffles, in [0, 2**63); None means 0.
    record_every : int, optional
        Record the full-data loss (and test accuracy) every this many updates
        (>= 1), and at the end; once per epoch when None.
    test : ClassificationData, optional
        Held-out data (same features, classes and dtype) whose accuracy is
        recorded beside the loss.
    backend : {"cpu", "reference"}, default "cpu"
        The compiled loop, or the Python one.

    Returns
    -------
    SoftmaxResult

    Raises
    ------
    TypeError, ValueError
        For a wrong argument (among others a ``backend`` not in
        :data:`BACKENDS`, or a hyperparameter that the working dtype cannot
        hold), before any work.

    Examples
    --------
    Three well-separated classes in two dimensions:

    >>> import numpy as np, rmsnum as rn
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 300)
    >>> centers = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    >>> X = centers[labels] + rng.standard_normal((300, 2))
    >>> problem = SoftmaxRegression(ClassificationData(X, labels, ("a", "b", "c")))
    >>> run = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=30, epochs=5)
    >>> run.loss_steps
    array([10, 20, 30, 40, 50])
    >>> bool(run.loss_curve[-1] < 0.2 < np.log(3)), run.accuracy > 0.95, run.diverged_at
    (True, True, None)

    The Python loop gives the same run, to rounding:

    >>> slow = train_softmax(rn.RMSProp(lr=0.01), problem, batch_size=30, epochs=5, backend="reference")
    >>> bool(np.allclose(slow.params, run.params, rtol=1e-12, atol=1e-14))
    True
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer such as RMSProp(lr=0.01), got {type(opt).__name__}")
    if not isinstance(problem, SoftmaxRegression):
        raise TypeError(f"problem must be a SoftmaxRegression, got {type(problem).__name__}")
    n = problem.n
    batch_size = v.integer("batch_size", batch_size, low=1)
    if batch_size > n:
        raise ValueError(f"batch_size must be in [1, {n}] (the number of rows), got {batch_size}")
    epochs = v.integer("epochs", epochs, low=1)
    seed_value = v.seed("seed", seed) or 0
    per_epoch = -(-n // batch_size)
    if record_every is None:
        record_every = per_epoch
    record_every = v.integer("record_every", record_every, low=1)
    if test is not None:
        test = problem._check_other("test", test)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    opt.check_dtype(problem.dtype)

    params = np.zeros(problem.dim, dtype=problem.dtype)
    state = opt.init(params)
    orders = np.random.default_rng(seed_value)
    train = _train_compiled if backend == "cpu" else _train_reference
    losses, steps, test_acc, diverged, elapsed = train(opt, problem, params, state, orders, batch_size, epochs,
                                                       record_every, test)
    with np.errstate(all="ignore"):
        accuracy = problem.accuracy(params)
    done = int(steps[-1])
    return SoftmaxResult(
        loss_curve=losses,
        loss_steps=steps,
        accuracy=accuracy,
        test_accuracy=test_acc,
        params=params,
        diverged_at=diverged,
        sec_per_epoch=elapsed * per_epoch / max(done, 1),
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        state=state,
        record_every=record_every,
        seed=seed_value,
        backend=backend,
    )


_Run = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "int | None", float]


def _train_compiled(opt: Optimizer, problem: SoftmaxRegression, params: np.ndarray, state: OptimizerState,
                    rng: np.random.Generator, batch_size: int, epochs: int, record_every: int,
                    test: ClassificationData | None) -> _Run:
    """The run as one call of :func:`rmsnum.backends.softmax.train` (one lane);
    ``params`` and ``state`` are updated. Returns (losses, steps, test
    accuracies or None, diverged_at, seconds of the updates)."""
    from .backends import softmax
    from .simulate import _finish_lane, _lane_arguments

    n, dt = problem.n, problem.dtype
    order = np.array([rng.permutation(n) for _ in range(epochs)], dtype=np.int64).reshape(epochs, n)
    slots, d, dec, C, like = _lane_arguments(opt, state)
    points = softmax.record_points(n, batch_size, epochs, record_every)
    losses = np.full(points, np.nan)
    accuracies = np.full(points, np.nan)
    steps = np.zeros(points, np.int64)
    counts = np.zeros(3, np.int64)
    seconds = np.zeros(1)
    if test is None:
        TX, tlabels = np.empty((0, problem.features), dt), np.empty(0, np.int64)
    else:
        TX, tlabels = test.X, test.labels
    run = softmax.train(opt.rule, params.reshape(problem.dim, 1), tuple(None if s is None else s[0] for s in slots),
                        None if d is None else d[0], None if dec is None else dec[0], C[0], like, problem.data.X,
                        problem.data.labels, order, batch_size, record_every, TX, tlabels, losses, accuracies, steps,
                        counts, seconds)
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start - float(seconds[0])
    done, diverged, recorded = (int(c) for c in counts)
    _finish_lane(state, d, done, -1)
    return (losses[:recorded].copy(), steps[:recorded].copy(), None if test is None else accuracies[:recorded].copy(),
            None if diverged < 0 else diverged, max(elapsed, 0.0))


def _train_reference(opt: Optimizer, problem: SoftmaxRegression, params: np.ndarray, state: OptimizerState,
                     rng: np.random.Generator, batch_size: int, epochs: int, record_every: int,
                     test: ClassificationData | None) -> _Run:
    """The run as a Python loop around :meth:`SoftmaxRegression._loss_grad` and
    ``opt.step``: the oracle of the compiled one; same arguments and results."""
    n = problem.n
    g = np.empty_like(params)
    # One throw-away update first, so that compiling (or loading) the step kernel is not timed.
    scratch = np.zeros_like(params)
    opt.step(scratch, np.zeros_like(params), opt.init(scratch))

    losses: list[float] = []
    steps: list[int] = []
    test_acc: list[float] = []
    diverged: int | None = None
    elapsed = 0.0
    done = 0

    def record() -> bool:
        """Record the current point; False when its loss is not finite."""
        steps.append(done)
        losses.append(problem.loss(params))
        if test is not None:
            test_acc.append(problem.accuracy(params, test))
        return math.isfinite(losses[-1])

    for _ in range(epochs):
        order = rng.permutation(n)
        start = time.perf_counter()
        for first in range(0, n, batch_size):
            if not math.isfinite(problem._loss_grad(params, order[first:first + batch_size], g)):
                diverged = done
                break
            opt.step(params, g, state)
            done += 1
            if done % record_every == 0:
                elapsed += time.perf_counter() - start
                finite = record()
                start = time.perf_counter()
                if not finite:
                    diverged = done
                    break
        elapsed += time.perf_counter() - start
        if diverged is not None:
            break
    if not steps or steps[-1] != done:
        if not record() and diverged is None:
            diverged = done
    return (np.array(losses, dtype=np.float64), np.array(steps, dtype=np.int64),
            None if test is None else np.array(test_acc, dtype=np.float64), diverged, elapsed)
