"""Helpers shared by the benchmark scripts."""

from __future__ import annotations


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows of cells as left-aligned columns, indented by two spaces."""
    ncol = max(len(row) for row in rows)
    rows = [row + ("",) * (ncol - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(ncol)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
