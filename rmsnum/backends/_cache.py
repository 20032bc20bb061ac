"""An honest on-disk cache key for rmsnum's compiled kernels.

Numba's cache checks only the source file of the kernel itself, but our
kernels inline the scalar rules from :mod:`rmsnum.rules`, the operators of
:mod:`._neutral_types` and the helpers of :mod:`._parts`, and compile with the
constants of :mod:`rmsnum._config`. This locator adds a digest of those
sources to the cache's freshness stamp, so editing a rule invalidates every
cached kernel that compiled it; the stamp also carries the
``RMSNUM_FASTMATH`` flag, which Numba's index key does not see. It applies
only to files of the ``rmsnum`` package; every other function keeps Numba's
own locators.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

from .._config import FASTMATH

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Sources compiled into kernels besides the kernel's own file.
COMPILED_SOURCES = (
    PACKAGE_DIR / "rules.py",
    PACKAGE_DIR / "backends" / "_neutral_types.py",
    PACKAGE_DIR / "backends" / "_parts.py",
    PACKAGE_DIR / "backends" / "cpu.py",  # _advance and _instantiate, compiled into backends/softmax.py's kernels
    PACKAGE_DIR / "classics.py",  # the built-in objectives, compiled into their kernels
    PACKAGE_DIR / "_config.py",  # the constants and fast-math flags the kernels compile with
)


def sources_digest() -> str:
    """SHA-256 over the sources that kernels inline (read on every call)."""
    h = hashlib.sha256()
    for path in COMPILED_SOURCES:
        h.update(path.read_bytes())
    return h.hexdigest()


class _RulesAware:
    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(PACKAGE_DIR):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return (super().get_source_stamp(), sources_digest(), FASTMATH)


class UserProvidedRulesLocator(_RulesAware, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR`` when it is set, stamped with the rules' digest."""


class InTreeRulesLocator(_RulesAware, caching.InTreeCacheLocator):
    """``__pycache__`` beside the kernel's file, stamped with the rules' digest."""


class UserWideRulesLocator(_RulesAware, caching.UserWideCacheLocator):
    """Numba's user-wide cache directory (read-only installs), stamped likewise."""


def install() -> None:
    """Put the rules-aware locators first in Numba's list (idempotent)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    locators = impl._locator_classes
    for cls in (UserWideRulesLocator, InTreeRulesLocator, UserProvidedRulesLocator):
        if cls not in locators:
            locators.insert(0, cls)
