"""The package version, in one place (imported by every module that records provenance)."""

__version__ = "0.1.0"
