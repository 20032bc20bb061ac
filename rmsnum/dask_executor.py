"""Dask: an executor of a sweep's chunks (placeholder until the Dask helper's module lands)."""


class ClusterLostError(RuntimeError):
    """The Dask cluster lost its workers while a sweep ran."""
