"""Regression datasets: the chapter's airfoil data and synthetic linear data with known weights."""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _validation as v
from ._config import DOWNLOAD_TIMEOUT

AIRFOIL_URL = "http://d2l-data.s3-accelerate.amazonaws.com/airfoil_self_noise.dat"
AIRFOIL_SHA1 = "76e5be1548fd8222e5074cf0faae75edff8cf93f"
AIRFOIL_FILENAME = "airfoil_self_noise.dat"
_AIRFOIL_ROWS = 1500  # rows the chapter keeps
_AIRFOIL_FEATURES = (
    "frequency [Hz]",
    "angle of attack [deg]",
    "chord length [m]",
    "free-stream velocity [m/s]",
    "suction-side displacement thickness [m]",
)


@dataclass(frozen=True, eq=False)
class RegressionData:
    """A regression dataset: features ``X`` of shape (n, d) and targets ``y`` of shape (n,).

    Both arrays are C-contiguous, float64 and read-only.

    Attributes
    ----------
    X, y : numpy.ndarray
        Features (n, d) and targets (n,).
    name : str
        A label, e.g. ``"airfoil self-noise (UCI, CC BY 4.0)"``.
    source : str
        The file the data was read from, or ``"synthetic"``.
    feature_names : tuple of str
        One name per column of ``X``.
    target_name : str
        The name of ``y``.
    true_w, true_b : numpy.ndarray and float, or None
        The weights and bias that generated ``y`` (synthetic data only).
    """

    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    name: str
    source: str
    feature_names: tuple[str, ...]
    target_name: str
    true_w: np.ndarray | None = None
    true_b: float | None = None

    @property
    def n(self) -> int:
        """Number of rows (examples)."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Number of features."""
        return self.X.shape[1]


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def cache_dir() -> Path:
    """The directory downloads go to: ``$XDG_CACHE_HOME/rmsnum``, else ``~/.cache/rmsnum``."""
    root = os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "rmsnum"


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _not_found(reason: str) -> FileNotFoundError:
    target = cache_dir() / AIRFOIL_FILENAME
    return FileNotFoundError(
        f"the airfoil dataset was not found locally and {reason}. Put {AIRFOIL_FILENAME} "
        f"(from {AIRFOIL_URL}) at {target}, or set RMSNUM_DATA=/path/to/{AIRFOIL_FILENAME}, "
        f"or call load_airfoil(path=...)"
    )


def _download(target: Path) -> None:
    """Fetch AIRFOIL_URL into ``target`` through a temporary file, checking its SHA-1."""
    try:
        with urllib.request.urlopen(AIRFOIL_URL, timeout=DOWNLOAD_TIMEOUT) as response:
            content = response.read()
    except (OSError, http.client.HTTPException) as err:  # URLError and timeouts are OSErrors
        raise _not_found(f"could not be downloaded ({err})") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        got = _sha1(Path(tmp))
        if got != AIRFOIL_SHA1:
            raise ValueError(
                f"the file downloaded from {AIRFOIL_URL} has SHA-1 {got}, expected {AIRFOIL_SHA1}; nothing was kept"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _locate(path: str | os.PathLike[str] | None, download: bool) -> Path:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise FileNotFoundError(f"path={str(found)!r} does not exist or is not a file")
        return found
    env = os.environ.get("RMSNUM_DATA")
    if env:
        found = Path(env)
        if found.is_dir():
            found = found / AIRFOIL_FILENAME
        if not found.is_file():
            raise FileNotFoundError(
                f"RMSNUM_DATA={env!r} is neither {AIRFOIL_FILENAME} nor a directory containing it"
            )
        return found
    found = cache_dir() / AIRFOIL_FILENAME
    if not found.is_file():
        if not download:
            raise _not_found("download=False forbids fetching it")
        _download(found)
    return found


def load_airfoil(path: str | os.PathLike[str] | None = None, *, download: bool = True) -> RegressionData:
    """The airfoil self-noise data, prepared as in the chapter "RMSProp" of Dive into Deep Learning.

    As d2l's ``get_data_ch11``: every column of the file is standardized
    (z-scored with the mean and the population standard deviation, ddof=0,
    over all 1503 rows), then the first 1500 rows are kept; ``X`` holds the
    five standardized features and ``y`` the standardized sound pressure
    level. (d2l parses in float32; here everything is float64.)

    The file is looked for, in order, at:

    1. ``path``, if given;
    2. ``$RMSNUM_DATA``, if set: the file itself or a directory containing
       ``airfoil_self_noise.dat``;
    3. ``cache_dir() / "airfoil_self_noise.dat"``, i.e.
       ``$XDG_CACHE_HOME/rmsnum/`` or ``~/.cache/rmsnum/``;
    4. if ``download`` is true, :data:`AIRFOIL_URL` (the chapter's copy), saved
       to the cache after checking its SHA-1 against :data:`AIRFOIL_SHA1`.

    A local copy with a different SHA-1 is still loaded, with a warning.

    Parameters
    ----------
    path : str or path-like, optional
        The tab-separated file ``airfoil_self_noise.dat``.
    download : bool, default True
        Whether to download the file when no local copy is found.

    Returns
    -------
    RegressionData
        ``X`` of shape (1500, 5), ``y`` of shape (1500,).

    Raises
    ------
    FileNotFoundError
        If ``path`` or ``$RMSNUM_DATA`` names no file, or if there is no local
        copy and it could not (or, with ``download=False``, may not) be
        downloaded; the message says where to put the file.
    ValueError
        If the downloaded file has the wrong SHA-1 (it is not kept), or the
        file is not a finite table of 6 columns with at least 1500 rows.

    Warns
    -----
    UserWarning
        If the local copy's SHA-1 differs from :data:`AIRFOIL_SHA1`: results
        will not match the chapter's published numbers.

    Notes
    -----
    Airfoil Self-Noise, UCI Machine Learning Repository (T. Brooks, D. Pope and
    M. Marcolini, 1989), https://doi.org/10.24432/C5VW2C, licensed CC BY 4.0.
    The measurements are from T. F. Brooks, D. S. Pope and M. A. Marcolini,
    *Airfoil Self-Noise and Prediction*, NASA Reference Publication 1218 (1989).

    Examples
    --------
    >>> data = load_airfoil()  # doctest: +SKIP
    >>> data.X.shape, data.y.shape  # doctest: +SKIP
    ((1500, 5), (1500,))
    >>> loss_at_zero = float(np.mean(data.y ** 2) / 2)  # doctest: +SKIP
    >>> round(loss_at_zero, 6)  # doctest: +SKIP
    0.493259
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like object, got {type(path).__name__}")
    download = v.boolean("download", download)
    found = _locate(path, download)
    if _sha1(found) != AIRFOIL_SHA1:
        warnings.warn(
            f"{found} differs from the chapter's airfoil_self_noise.dat (SHA-1 {AIRFOIL_SHA1}); "
            "results will not match the chapter's published numbers",
            UserWarning,
            stacklevel=2,
        )
    try:
        table = np.loadtxt(found, delimiter="\t", dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{found} is not a tab-separated table of numbers: {err}") from err
    if table.ndim != 2 or table.shape[1] != 6 or table.shape[0] < _AIRFOIL_ROWS:
        raise ValueError(
            f"{found} must be a table of 6 columns and at least {_AIRFOIL_ROWS} rows, got shape {table.shape}"
        )
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{found} contains non-finite values")
    constant = np.flatnonzero(np.ptp(table, axis=0) == 0)
    if constant.size:
        raise ValueError(f"{found} has constant columns {constant.tolist()}, which cannot be standardized")
    table = ((table - table.mean(axis=0)) / table.std(axis=0))[:_AIRFOIL_ROWS]
    return RegressionData(
        X=_read_only(table[:, :5]),
        y=_read_only(table[:, 5]),
        name="airfoil self-noise (UCI, CC BY 4.0)",
        source=str(found),
        feature_names=_AIRFOIL_FEATURES,
        target_name="scaled sound pressure level [dB]",
    )


def synthetic_regression(n: int = 1500, d: int = 5, noise: float = 0.1, seed: int | None = 0) -> RegressionData:
    """Linear data with known weights: ``y = X @ true_w + true_b + noise * eps``.

    With ``rng = numpy.random.default_rng(seed)``, drawn in this order:
    ``X = rng.standard_normal((n, d))``, ``true_w = rng.normal(0, 1/sqrt(d), d)``
    and ``eps = rng.standard_normal(n)``; ``true_b = 0.5``. The same arguments
    give bit-identical data.

    Parameters
    ----------
    n : int, default 1500
        Number of rows, >= 1.
    d : int, default 5
        Number of features, >= 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise on ``y``, finite and >= 0.
    seed : int, default 0
        Seed in [0, 2**63); 0 if None.

    Returns
    -------
    RegressionData
        With ``true_w`` (read-only, shape (d,)) and ``true_b = 0.5``.

    Examples
    --------
    >>> import numpy as np
    >>> data = synthetic_regression(n=200, d=3, noise=0.0, seed=1)
    >>> data.X.shape, data.y.shape, data.true_b
    ((200, 3), (200,), 0.5)
    >>> A = np.column_stack([data.X, np.ones(data.n)])
    >>> w = np.linalg.lstsq(A, data.y, rcond=None)[0]
    >>> bool(np.allclose(w, [*data.true_w, data.true_b]))
    True
    """
    n = v.integer("n", n, low=1)
    d = v.integer("d", d, low=1)
    noise = v.real("noise", noise, low=0.0)
    seed = v.seed("seed", seed) or 0
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    true_w = rng.normal(0.0, 1.0 / math.sqrt(d), d)
    true_b = 0.5
    y = X @ true_w + true_b + noise * rng.standard_normal(n)
    return RegressionData(
        X=_read_only(X),
        y=_read_only(y),
        name=f"synthetic(n={n}, d={d}, noise={noise:g}, seed={seed})",
        source="synthetic",
        feature_names=tuple(f"x{i}" for i in range(d)),
        target_name="y",
        true_w=_read_only(true_w),
        true_b=true_b,
    )
