"""Importing the frameworks that the comparison tests run against: torch, Keras 3 (on jax) and optax.

Under the README's test command they are absent and their tests skip. The ``frameworks`` extra
installs them, and ``.ci/run`` then runs the tests marked ``frameworks`` with
``RMSNUM_FRAMEWORKS=required``: a framework that cannot be imported is then an error, never a skip,
so that step proves every comparison.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager, nullcontext
from types import ModuleType

import numpy as np
import pytest

REQUIRED = os.environ.get("RMSNUM_FRAMEWORKS") == "required"


def framework(name: str) -> ModuleType:
    """The module ``name``; skips the test without it, unless the frameworks are required."""
    if REQUIRED:
        return importlib.import_module(name)
    return pytest.importorskip(name)


def keras() -> ModuleType:
    """Keras 3, on the jax backend unless one is chosen already (else torch where jax is absent)."""
    if "keras" not in sys.modules and "KERAS_BACKEND" not in os.environ:
        backend = next((b for b in ("jax", "torch") if REQUIRED or importlib.util.find_spec(b)), None)
        if backend is None:
            pytest.skip("Keras needs jax or torch here")
        os.environ["KERAS_BACKEND"] = backend
    module = framework("keras")
    if int(module.__version__.split(".")[0]) < 3:
        if REQUIRED:
            raise ImportError(f"the frameworks extra needs Keras 3, found {module.__version__}")
        pytest.skip("needs Keras 3")
    return module


def jax_precision(dtype):
    """A context in which JAX computes in ``dtype``: float64 needs x64, enabled only inside it."""
    jax = framework("jax")
    if np.dtype(dtype) == np.float32:
        return nullcontext()
    if hasattr(jax, "enable_x64"):  # JAX >= 0.7: a thread-local context manager
        return jax.enable_x64(True)
    return framework("jax.experimental").enable_x64()


@contextmanager
def keras_precision(dtype):
    """A context in which Keras makes its variables (the learning rate's too) in ``dtype``."""
    module = keras()
    before = module.config.floatx()
    backend = module.config.backend()
    with jax_precision(dtype) if backend == "jax" else nullcontext():
        module.config.set_floatx(np.dtype(dtype).name)
        try:
            yield module
        finally:
            module.config.set_floatx(before)


def versions() -> dict[str, str]:
    """The version of each framework that is importable here (for the report's header)."""
    found = {}
    for name in ("torch", "keras", "jax", "optax"):
        if importlib.util.find_spec(name):
            try:
                found[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
    return found
