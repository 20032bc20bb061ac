"""Datasets: the chapter's airfoil data (lookup, download, checks, preparation) and synthetic regression.

No test touches the network: ``urllib.request.urlopen`` is replaced in every test.
"""

import hashlib
import io
import math
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import AIRFOIL
from rmsnum import data

REAL_FILE = AIRFOIL  # ../shared/data, or $RMSNUM_TEST_DATA (conftest.py)
MISMATCH = "ignore:.*published numbers:UserWarning"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No RMSNUM_DATA, a private cache directory, and no network."""
    monkeypatch.delenv("RMSNUM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_network(*args, **kwargs):
        raise AssertionError("the tests must not reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture
def real_bytes():
    if not REAL_FILE.is_file():
        pytest.skip(f"the shared copy {REAL_FILE} is absent")
    return REAL_FILE.read_bytes()


def cached_file():
    return data.cache_dir() / data.AIRFOIL_FILENAME


def write_table(path, rows=1503, cols=6, seed=0):
    """A well-formed table that is not the chapter's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.random.default_rng(seed).normal(size=(rows, cols)), delimiter="\t")
    return path


def serve(monkeypatch, content=None, error=None):
    """Replace urlopen by one that returns ``content`` or raises ``error``; returns the calls made."""
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append((url, timeout))
        if error is not None:
            raise error
        return io.BytesIO(content)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return calls


# --- the real file ---------------------------------------------------------------------------------


def test_real_file_is_prepared_as_in_the_chapter(real_bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data.load_airfoil(REAL_FILE)
    assert (ds.n, ds.d) == (1500, 5)
    assert ds.X.shape == (1500, 5) and ds.y.shape == (1500,)
    for a in (ds.X, ds.y):
        assert a.dtype == np.float64 and a.flags.c_contiguous and not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 1.0
    raw = np.genfromtxt(io.BytesIO(real_bytes), delimiter="\t")
    assert raw.shape == (1503, 6)
    mean = raw.sum(axis=0) / len(raw)
    std = np.sqrt(((raw - mean) ** 2).sum(axis=0) / len(raw))
    scaled = (raw - mean) / std
    np.testing.assert_allclose(ds.X, scaled[:1500, :5], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ds.y, scaled[:1500, 5], rtol=1e-12, atol=1e-12)
    assert ds.source == str(REAL_FILE) and ds.true_w is None and ds.true_b is None
    assert len(ds.feature_names) == 5 and "CC BY 4.0" in ds.name


def test_real_file_losses_match_the_chapter(real_bytes):
    ds = data.load_airfoil(REAL_FILE)
    assert round(float(np.mean(ds.y**2) / 2), 6) == 0.493259
    A = np.column_stack([ds.X, np.ones(ds.n)])
    w = np.linalg.lstsq(A, ds.y, rcond=None)[0]
    assert round(float(np.mean((A @ w - ds.y) ** 2) / 2), 6) == 0.241688


def test_repr_does_not_dump_the_arrays(real_bytes):
    text = repr(data.load_airfoil(REAL_FILE))
    assert "airfoil" in text and "X=" not in text and "array(" not in text


# --- where the file is looked for --------------------------------------------------------------------


@pytest.mark.filterwarnings(MISMATCH)
def test_explicit_path_beats_environment_beats_cache(tmp_path, monkeypatch):
    explicit = write_table(tmp_path / "explicit.dat", seed=1)
    env = write_table(tmp_path / "env" / data.AIRFOIL_FILENAME, seed=2)
    cached = write_table(cached_file(), seed=3)
    assert cached == tmp_path / "xdg" / "rmsnum" / data.AIRFOIL_FILENAME
    monkeypatch.setenv("RMSNUM_DATA", str(env))
    assert data.load_airfoil(explicit).source == str(explicit)
    assert data.load_airfoil(str(explicit)).source == str(explicit)
    assert data.load_airfoil().source == str(env)
    monkeypatch.delenv("RMSNUM_DATA")
    assert data.load_airfoil().source == str(cached)


@pytest.mark.filterwarnings(MISMATCH)
def test_environment_variable_may_name_a_directory(tmp_path, monkeypatch):
    env = write_table(tmp_path / "env" / data.AIRFOIL_FILENAME)
    monkeypatch.setenv("RMSNUM_DATA", str(env.parent))
    assert data.load_airfoil().source == str(env)


def test_environment_variable_naming_nothing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RMSNUM_DATA", str(tmp_path))  # a directory without the file
    with pytest.raises(FileNotFoundError, match="RMSNUM_DATA"):
        data.load_airfoil()


def test_cache_dir_follows_xdg_cache_home(tmp_path, monkeypatch):
    assert data.cache_dir() == tmp_path / "xdg" / "rmsnum"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir() == Path.home() / ".cache" / "rmsnum"


def test_missing_explicit_path_is_named(tmp_path):
    missing = tmp_path / "nowhere.dat"
    with pytest.raises(FileNotFoundError, match="nowhere.dat"):
        data.load_airfoil(missing)


def test_bad_argument_kinds():
    with pytest.raises(TypeError, match="path"):
        data.load_airfoil(3)
    with pytest.raises(TypeError, match="download"):
        data.load_airfoil(download="no")


# --- download ------------------------------------------------------------------------------------------


def test_download_fills_the_cache_and_loads(real_bytes, monkeypatch):
    calls = serve(monkeypatch, real_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data.load_airfoil()
    assert [url for url, _ in calls] == [data.AIRFOIL_URL]
    assert calls[0][1] is not None  # a timeout is always given
    target = cached_file()
    assert ds.source == str(target)
    assert hashlib.sha1(target.read_bytes()).hexdigest() == data.AIRFOIL_SHA1
    assert sorted(p.name for p in target.parent.iterdir()) == [data.AIRFOIL_FILENAME]
    np.testing.assert_array_equal(ds.X, data.load_airfoil(REAL_FILE).X)
    data.load_airfoil()  # now cached: no second download
    assert len(calls) == 1


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, monkeypatch):
    wrong = write_table(tmp_path / "wrong.dat").read_bytes()
    serve(monkeypatch, wrong)
    with pytest.raises(ValueError) as info:
        data.load_airfoil()
    message = str(info.value)
    assert data.AIRFOIL_SHA1 in message and hashlib.sha1(wrong).hexdigest() in message
    assert data.AIRFOIL_URL in message
    cache = data.cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize(
    "error",
    [urllib.error.URLError("no route to host"), TimeoutError("timed out"), ConnectionResetError("reset")],
    ids=["URLError", "timeout", "reset"],
)
def test_network_failure_says_where_to_put_the_file(monkeypatch, error):
    serve(monkeypatch, error=error)
    with pytest.raises(FileNotFoundError) as info:
        data.load_airfoil()
    message = str(info.value)
    assert str(cached_file()) in message and "RMSNUM_DATA" in message and "path=" in message
    assert str(error) in message
    cache = data.cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_false_never_calls_the_network():
    # the autouse fixture makes any urlopen call fail with AssertionError
    with pytest.raises(FileNotFoundError) as info:
        data.load_airfoil(download=False)
    assert str(cached_file()) in str(info.value) and "RMSNUM_DATA" in str(info.value)


# --- checks on the file --------------------------------------------------------------------------------


def test_different_local_copy_warns_and_still_loads(tmp_path):
    other = write_table(tmp_path / "other.dat")
    with pytest.warns(UserWarning, match="published numbers") as record:
        ds = data.load_airfoil(other)
    assert str(other) in str(record[0].message)
    assert ds.X.shape == (1500, 5)
    np.testing.assert_allclose(ds.y.mean(), 0.0, atol=0.1)  # standardized over 1503 rows, then cut


def _five_columns(path):
    write_table(path, cols=5)


def _too_few_rows(path):
    write_table(path, rows=1499)


def _nan(path):
    write_table(path)
    lines = path.read_text().splitlines()
    lines[7] = "\t".join(["nan"] + lines[7].split("\t")[1:])
    path.write_text("\n".join(lines) + "\n")


def _ragged(path):
    write_table(path)
    with path.open("a") as f:
        f.write("1\t2\t3\n")


def _text(path):
    path.write_text("frequency\tangle\tchord\tvelocity\tthickness\tpressure\n" * 1503)


def _constant_column(path):
    table = np.random.default_rng(0).normal(size=(1503, 6))
    table[:, 2] = 0.3048
    np.savetxt(path, table, delimiter="\t")


@pytest.mark.filterwarnings(MISMATCH)
@pytest.mark.parametrize("make", [_five_columns, _too_few_rows, _nan, _ragged, _text, _constant_column])
def test_malformed_file_is_named(tmp_path, make):
    path = tmp_path / f"bad{make.__name__}.dat"
    make(path)
    with pytest.raises(ValueError, match=f"bad{make.__name__}"):
        data.load_airfoil(path)


# --- synthetic regression ------------------------------------------------------------------------------


def test_synthetic_is_bit_identical_for_the_same_arguments():
    a = data.synthetic_regression(n=300, d=4, noise=0.2, seed=7)
    b = data.synthetic_regression(n=300, d=4, noise=0.2, seed=7)
    for x, y in [(a.X, b.X), (a.y, b.y), (a.true_w, b.true_w)]:
        assert x.tobytes() == y.tobytes()
    assert a.name == b.name == "synthetic(n=300, d=4, noise=0.2, seed=7)"


def test_synthetic_follows_the_documented_recipe():
    ds = data.synthetic_regression(n=50, d=3, noise=0.3, seed=11)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((50, 3))
    w = rng.normal(0, 1 / math.sqrt(3), 3)
    y = X @ w + 0.5 + 0.3 * rng.standard_normal(50)
    assert ds.X.tobytes() == X.tobytes() and ds.true_w.tobytes() == w.tobytes()
    assert ds.y.tobytes() == y.tobytes() and ds.true_b == 0.5


def test_synthetic_seeds_differ_and_none_means_zero():
    a, b = data.synthetic_regression(seed=0), data.synthetic_regression(seed=1)
    assert not np.array_equal(a.X, b.X) and not np.array_equal(a.true_w, b.true_w)
    np.testing.assert_array_equal(data.synthetic_regression(seed=None).y, a.y)


def test_synthetic_shapes_and_metadata():
    ds = data.synthetic_regression()
    assert (ds.n, ds.d) == (1500, 5) and ds.X.shape == (1500, 5) and ds.y.shape == (1500,)
    assert ds.true_w.shape == (5,) and ds.source == "synthetic" and len(ds.feature_names) == 5
    for a in (ds.X, ds.y, ds.true_w):
        assert a.dtype == np.float64 and a.flags.c_contiguous and not a.flags.writeable
    one = data.synthetic_regression(n=1, d=1)
    assert one.X.shape == (1, 1) and one.y.shape == (1,)


def _fit(ds):
    A = np.column_stack([ds.X, np.ones(ds.n)])
    return np.linalg.lstsq(A, ds.y, rcond=None)[0]


def test_synthetic_weights_are_recovered():
    ds = data.synthetic_regression(n=1500, d=5, noise=0.1, seed=3)
    # each coefficient's standard error is about noise / sqrt(n) ~ 0.0026; allow 8 of them
    np.testing.assert_allclose(_fit(ds), [*ds.true_w, ds.true_b], atol=8 * 0.1 / math.sqrt(1500))


def test_synthetic_without_noise_fits_exactly():
    ds = data.synthetic_regression(n=40, d=6, noise=0.0, seed=5)
    coef = _fit(ds)
    np.testing.assert_allclose(coef, [*ds.true_w, ds.true_b], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.column_stack([ds.X, np.ones(ds.n)]) @ coef, ds.y, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n": 0}, ValueError, "n"),
        ({"n": 1.5}, TypeError, "n"),
        ({"n": True}, TypeError, "n"),
        ({"d": 0}, ValueError, "d"),
        ({"d": 2.0}, TypeError, "d"),
        ({"noise": -1}, ValueError, "noise"),
        ({"noise": math.nan}, ValueError, "noise"),
        ({"noise": math.inf}, ValueError, "noise"),
        ({"noise": "0.1"}, TypeError, "noise"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**63}, ValueError, "seed"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        data.synthetic_regression(**kwargs)
