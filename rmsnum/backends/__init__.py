"""Backends: ``reference`` (the NumPy oracle) and ``cpu`` (Numba).

Importing this package compiles nothing; kernels compile on first use.
"""
