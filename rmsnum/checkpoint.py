"""Checkpoints of a sweep: a directory of finished chunks, resumable after a kill at any moment.

Layout of a checkpoint directory::

    sweep.json            the manifest: format, the sweep's fingerprint, the number of chunks,
                          and per finished chunk its file, its index, the fingerprint and a SHA-256
    chunk-00000000.npz    one finished chunk: its outputs, plus its index and the fingerprint
    lock                  held (``filelock``) by the process that runs the sweep
    lock.owner            who holds it: process id, host and start time, for the error message

Every file is written atomically (a temporary ``<name>.tmp<pid>``, flushed, then renamed), and a
chunk is written before the manifest names it. So a kill at any moment leaves the directory
either as it was or with one more finished chunk (and perhaps a temporary file, or a chunk file
that the manifest does not name yet: both are removed by the next run).

On resume, every chunk the manifest names is checked against its SHA-256, its index, the
fingerprint and the arrays the sweep expects; a chunk that fails any check is reported in a
:class:`CheckpointWarning` that names the file, and is computed again.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import socket
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

FORMAT = "rmsnum.checkpoint/2"
MANIFEST = "sweep.json"
LOCK = "lock"
OWNER = "lock.owner"

_fault_hook: Callable[[str, int], None] | None = None
"""Called as ``_fault_hook(point, chunk)`` at each point where a kill could land (tests set it, in a
subprocess, to kill the process there): ``"manifest-tmp"`` (the first manifest written, not yet
renamed; chunk -1), ``"chunk-tmp"`` (a chunk written, not yet renamed), ``"chunk-renamed"`` (renamed,
not yet in the manifest) and ``"chunk-recorded"`` (in the manifest)."""


class CheckpointWarning(UserWarning):
    """A chunk of a checkpoint was damaged, foreign or stale, and is computed again."""


def check_path(name: str, value: Any) -> Path | None:
    """The checkpoint argument as a Path (None stays None); a ``TypeError`` for a wrong kind and a
    ``ValueError`` when it names something other than a directory. Touches nothing."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path to a directory (str or os.PathLike), got {value!r}")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a file, not a directory: a checkpoint is a directory of "
                         "finished chunks; give a new or existing checkpoint directory")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{name}={str(path)!r} cannot be a directory: {str(parent)!r} is a file")
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_temporary(name: str) -> bool:
    return ".tmp" in name and (name.startswith(MANIFEST) or name.startswith("chunk-"))


class Checkpoint:
    """A locked checkpoint directory of one sweep (use it as a context manager).

    Parameters
    ----------
    path : Path
        The directory; created when missing.
    fingerprint : str
        Digest of every argument that changes the sweep's numbers or its chunking.
    n_chunks : int
        Chunks of the sweep.
    expected : callable
        ``expected(chunk)`` -> {array name: (shape, dtype)} of that chunk's outputs.
    """

    def __init__(self, path: Path, fingerprint: str, n_chunks: int,
                 expected: Callable[[int], dict[str, tuple[tuple[int, ...], np.dtype]]]) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.n_chunks = n_chunks
        self.expected = expected
        self.chunks: dict[int, dict] = {}
        self._lock = None

    # ------------------------------------------------------------------ opening and locking

    def __enter__(self) -> "Checkpoint":
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"cannot create the checkpoint directory {str(self.path)!r}: {err}") from err
        self._acquire()
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release()

    def _acquire(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RuntimeError(f"checkpoint {str(self.path)!r} is in use by another sweep ({self._owner()}); "
                               "wait for it to finish, or give another checkpoint directory") from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self._write(self.path / OWNER, json.dumps(owner).encode(), None, -1)

    def _owner(self) -> str:
        try:
            owner = json.loads((self.path / OWNER).read_text())
            return f"process {owner['pid']} on {owner['host']}, since {owner['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not recorded itself yet"

    def _release(self) -> None:
        if self._lock is not None:
            (self.path / OWNER).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def _open(self) -> None:
        """Remove what a killed run left behind, then read (or start) the manifest."""
        manifest = self.path / MANIFEST
        for entry in self.path.iterdir():
            if _is_temporary(entry.name):
                entry.unlink(missing_ok=True)
        if not manifest.exists():
            own = {LOCK, OWNER}
            foreign = sorted(e.name for e in self.path.iterdir() if e.name not in own)
            if foreign:
                raise ValueError(f"checkpoint {str(self.path)!r} exists and is not an rmsnum sweep checkpoint "
                                 f"(it holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''} and no "
                                 f"{MANIFEST}); give an empty or new directory")
            self._write_manifest("manifest-tmp")
            return
        stored = self._read_manifest(manifest)
        if stored["fingerprint"] != self.fingerprint:
            raise ValueError(f"checkpoint {str(self.path)!r} was made by a sweep with different arguments; "
                             "use another checkpoint path, or delete this one to start over")
        self.chunks = {}
        for key, entry in stored["chunks"].items():
            ok = (isinstance(entry, dict) and key.isdigit() and entry.get("index") == int(key)
                  and entry.get("file") == self._chunk_name(int(key)) and int(key) < self.n_chunks
                  and entry.get("fingerprint") == self.fingerprint and isinstance(entry.get("sha256"), str))
            if not ok:
                self._warn(f"{MANIFEST} entry {key!r}", "the manifest's record of it is not valid")
                continue
            self.chunks[int(key)] = entry
        named = {self._chunk_name(c) for c in self.chunks}
        for entry in self.path.glob("chunk-*.npz"):
            if entry.name not in named:  # written by a run killed before its manifest named it
                entry.unlink(missing_ok=True)

    def _read_manifest(self, manifest: Path) -> dict:
        def damaged(reason: str) -> ValueError:
            return ValueError(f"checkpoint {str(self.path)!r}: {MANIFEST} is damaged or not an rmsnum checkpoint "
                              f"manifest ({reason}); delete the directory to start over")
        try:
            stored = json.loads(manifest.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise damaged(f"not valid JSON: {err}") from None
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            raise damaged(f"its format is not {FORMAT!r}")
        if not isinstance(stored.get("fingerprint"), str) or not isinstance(stored.get("chunks"), dict) \
                or not isinstance(stored.get("n_chunks"), int):
            raise damaged("its fingerprint, chunk count or chunk table is missing")
        return stored

    # ------------------------------------------------------------------ chunks

    @staticmethod
    def _chunk_name(chunk: int) -> str:
        return f"chunk-{chunk:08d}.npz"

    def _warn(self, what: str, reason: str) -> None:
        warnings.warn(f"checkpoint {str(self.path)!r}: {what} is {reason}; computing that chunk again",
                      CheckpointWarning, stacklevel=4)

    def finished(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(chunk, outputs)`` for every finished chunk that passes every check, one at a
        time (so at most one chunk is in memory besides the caller's results); the others are
        reported in a :class:`CheckpointWarning`, dropped from the manifest and left to compute again."""
        for chunk in sorted(self.chunks):
            name = self._chunk_name(chunk)
            reason, outputs = self._verify(chunk)
            if reason is None:
                yield chunk, outputs
            else:
                self._warn(name, reason)
                del self.chunks[chunk]
                (self.path / name).unlink(missing_ok=True)

    def _verify(self, chunk: int) -> tuple[str | None, dict[str, np.ndarray]]:
        entry = self.chunks[chunk]
        try:
            data = (self.path / entry["file"]).read_bytes()
        except FileNotFoundError:
            return "missing", {}
        except OSError as err:
            return f"unreadable ({err})", {}
        if _sha256(data) != entry["sha256"]:
            return "not the file that was written (its SHA-256 differs: damaged, edited or copied)", {}
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as err:
            return f"not a readable chunk ({type(err).__name__}: {err})", {}
        stamp = arrays.pop("_chunk", None)
        if stamp is None or stamp.shape != () or str(stamp) != json.dumps([chunk, self.fingerprint]):
            return "from another place or another sweep (its index or fingerprint differs)", {}
        expected = self.expected(chunk)
        if set(arrays) != set(expected):
            return f"holding arrays {sorted(arrays)} instead of {sorted(expected)}", {}
        for name, (shape, dtype) in expected.items():
            if arrays[name].shape != shape or arrays[name].dtype != dtype:
                return (f"holding {name} of shape {arrays[name].shape} and dtype {arrays[name].dtype} instead of "
                        f"{shape} and {np.dtype(dtype)}"), {}
        return None, arrays

    def save(self, chunk: int, outputs: dict[str, np.ndarray]) -> None:
        """Write one finished chunk, then record it in the manifest (each atomically)."""
        buffer = io.BytesIO()
        np.savez(buffer, _chunk=np.array(json.dumps([chunk, self.fingerprint])), **outputs)
        data = buffer.getvalue()
        name = self._chunk_name(chunk)
        self._write(self.path / name, data, "chunk", chunk)
        self.chunks[chunk] = {"index": chunk, "file": name, "fingerprint": self.fingerprint, "sha256": _sha256(data)}
        self._write_manifest("chunk-recorded", chunk)

    def _write_manifest(self, point: str, chunk: int = -1) -> None:
        manifest = {"format": FORMAT, "fingerprint": self.fingerprint, "n_chunks": self.n_chunks,
                    "chunks": {str(c): self.chunks[c] for c in sorted(self.chunks)}}
        self._write(self.path / MANIFEST, json.dumps(manifest, indent=1).encode(),
                    "manifest" if point == "manifest-tmp" else None, chunk)
        if point == "chunk-recorded" and _fault_hook is not None:
            _fault_hook(point, chunk)

    def _write(self, path: Path, data: bytes, hook: str | None, chunk: int) -> None:
        """Write ``data`` to ``path`` atomically; on failure remove the temporary file and say what failed."""
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if hook is not None and _fault_hook is not None:
                _fault_hook(f"{hook}-tmp", chunk)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            kept = f"; the {len(self.chunks)} chunks finished before are kept" if hook == "chunk" else ""
            raise OSError(err.errno, f"could not write {str(path)!r} ({err.strerror or err}){kept}; "
                          "free some space (or fix the permissions) and run the same sweep again to resume") from err
        if hook == "chunk" and _fault_hook is not None:
            _fault_hook("chunk-renamed", chunk)
