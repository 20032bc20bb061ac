"""``rmsnum report``: run the four exercise studies and write them up as HTML or Markdown."""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

from . import studies as st

FORMATS = ("html", "md")


def _environment() -> list[tuple[str, str]]:
    import matplotlib
    import numba
    import numpy
    import scipy

    from ._version import __version__

    return [("rmsnum", __version__), ("numpy", numpy.__version__), ("numba", numba.__version__),
            ("scipy", scipy.__version__), ("matplotlib", matplotlib.__version__),
            ("python", platform.python_version()), ("machine", f"{platform.machine()}, {os.cpu_count()} cores"),
            ("date", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))]


def _png(study: st.Study) -> bytes:
    buffer = io.BytesIO()
    study.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def run_studies(data: Any = None, fashion_mnist: str | Path | None = None,
                say: Callable[[str], Any] = print) -> list[tuple[st.Study, float]]:
    """Run the four studies at their default sizes; return each with its wall time in seconds."""
    runs = [lambda: st.gamma_one(), lambda: st.rotation(),
            lambda: st.real_problem(data, fashion_mnist=fashion_mnist), lambda: st.gamma_schedules(data=data)]
    out = []
    for run in runs:
        start = time.perf_counter()
        study = run()
        seconds = time.perf_counter() - start
        say(f"  {study.title}: {seconds:.1f} s")
        out.append((study, seconds))
    return out


def write_report(out: str | Path, fmt: str = "html", *, data: Any = None, fashion_mnist: str | Path | None = None,
                 say: Callable[[str], Any] = print) -> Path:
    """Run the studies and write ``report.html`` (figures embedded: one self-contained
    file) or ``report.md`` (figures as PNGs beside it) into the folder ``out``.

    Parameters
    ----------
    out : path
        Output folder, created if needed.
    fmt : {"html", "md"}
    data : RegressionData or path, optional
        The airfoil data (default: the local copy, else synthetic data).
    fashion_mnist : path, optional
        A folder with the Fashion-MNIST files, for the softmax-regression part of exercise 3.

    Returns
    -------
    pathlib.Path
        The report file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    results = run_studies(data, fashion_mnist, say)
    path = folder / f"report.{fmt}"
    if fmt == "html":
        path.write_text(_html(results), encoding="utf-8")
    else:
        for study, _ in results:
            (folder / f"{study.name}.png").write_bytes(_png(study))
        path.write_text(_markdown(results), encoding="utf-8")
    return path


TITLE = "RMSProp, the chapter's exercises: a reproducible report"
INTRO = ("Each section runs one exercise of the RMSProp chapter of Dive into Deep Learning with rmsnum "
         "(compiled kernels; every number below was measured by this run) and states what the numbers show.")


def _html(results: list[tuple[st.Study, float]]) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(TITLE)}</title>",
             "<style>body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.45}"
             "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}</style></head><body>",
             f"<h1>{html.escape(TITLE)}</h1><p>{html.escape(INTRO)}</p>"]
    for study, seconds in results:
        image = base64.b64encode(_png(study)).decode("ascii")
        parts.append(f"<h2>{html.escape(study.title)}</h2><ul>"
                     + "".join(f"<li>{html.escape(line)}</li>" for line in study.findings) + "</ul>"
                     + f"<img alt='{html.escape(study.title)}' src='data:image/png;base64,{image}'>"
                     + f"<p><small>{seconds:.1f} s</small></p>")
    parts.append("<h2>Environment</h2><table>"
                 + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(val)}</td></tr>" for k, val in _environment())
                 + "</table></body></html>\n")
    return "\n".join(parts)


def _markdown(results: list[tuple[st.Study, float]]) -> str:
    lines = [f"# {TITLE}", "", INTRO, ""]
    for study, seconds in results:
        lines += [f"## {study.title}", ""] + [f"- {line}" for line in study.findings]
        lines += ["", f"![{study.title}]({study.name}.png)", "", f"*{seconds:.1f} s*", ""]
    lines += ["## Environment", "", "| | |", "|---|---|"] + [f"| {k} | {val} |" for k, val in _environment()]
    return "\n".join(lines) + "\n"
