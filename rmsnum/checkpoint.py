"""Checkpoints of a sweep: a directory of finished chunks, resumable after a kill at any moment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class Checkpoint:
    """A directory of finished chunks, each written atomically (write, then rename)."""

    def __init__(self, path: str | os.PathLike, fingerprint: str, n_chunks: int) -> None:
        self.path = Path(path)
        meta = self.path / "sweep.json"
        if meta.exists():
            stored = json.loads(meta.read_text())
            if stored.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"checkpoint {str(self.path)!r} was made by a sweep with different arguments; "
                    "use another checkpoint path, or delete this one to start over"
                )
        else:
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(f"checkpoint {str(self.path)!r} exists and is not an rmsnum sweep checkpoint")
            self.path.mkdir(parents=True, exist_ok=True)
            self._atomic_write(meta, json.dumps({"fingerprint": fingerprint, "chunks": n_chunks}).encode())
        self.n_chunks = n_chunks

    def _chunk_path(self, chunk: int) -> Path:
        return self.path / f"chunk-{chunk:08d}.npz"

    def finished(self) -> list[int]:
        return [c for c in range(self.n_chunks) if self._chunk_path(c).exists()]

    def load(self, chunk: int) -> dict[str, np.ndarray]:
        with np.load(self._chunk_path(chunk), allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def save(self, chunk: int, outputs: dict[str, np.ndarray]) -> None:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **outputs)
        self._atomic_write(self._chunk_path(chunk), buffer.getvalue())

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
