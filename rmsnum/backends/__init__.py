"""Backends: ``reference`` (the NumPy oracle), ``cpu`` (Numba) and ``cuda`` (numba-cuda),
each implementing the interface of :mod:`rmsnum.backends.base`, which also finds them by name.

Importing this package compiles nothing; kernels compile on first use.
"""
