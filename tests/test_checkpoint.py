"""Checkpoints: resumable after a kill at any point, locked, every chunk verified, failed writes cleaned.

Faults are injected deterministically: ``rmsnum.checkpoint._fault_hook`` is called at each point where
a kill could land, and a subprocess sets it to kill itself (SIGKILL) or to wait there; a failing write
is an ``OSError`` raised from the hook, or a real one under a lowered ``RLIMIT_FSIZE``.
"""

import errno
import importlib
import io
import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import rmsnum as rn
from rmsnum.checkpoint import CheckpointWarning

checkpoint_module = importlib.import_module("rmsnum.checkpoint")
executors = importlib.import_module("rmsnum.sweep.executors")  # the chunk loop looks up start_chunk here

X0 = (-5.0, -2.0)
GRID = {"lr": np.logspace(-3, 0, 8), "gamma": [0.5, 0.9, 0.99, 0.999, 0.9999]}  # 40 configurations
ARGS = dict(optimizer=rn.RMSProp, objective=rn.quadratic_2d(), x0=X0, steps=300, grid=GRID, chunk_size=8,
            record=50, progress=False)  # 5 chunks
OUTPUTS = ("final_x", "final_loss", "diverged_at", "loss")


@pytest.fixture(scope="module")
def fresh():
    return rn.sweep(**ARGS)


def _assert_same(a, b):
    for name in OUTPUTS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _leftovers(ckpt):
    return sorted(p.name for p in ckpt.iterdir() if ".tmp" in p.name)


SCRIPT = """
import os, signal, sys, numpy as np, rmsnum as rn
import rmsnum.checkpoint as ck
POINT, CHUNK = {point!r}, {chunk}
def hook(point, chunk):
    if point == POINT and chunk == CHUNK:
        if {wait!r}:
            print("holding", flush=True)
            sys.stdin.readline()
        else:
            os.kill(os.getpid(), signal.SIGKILL)
ck._fault_hook = hook
rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), 300,
         {{"lr": np.logspace(-3, 0, 8), "gamma": [0.5, 0.9, 0.99, 0.999, 0.9999]}},
         chunk_size=8, record=50, progress=False, checkpoint={ckpt!r})
"""


def _process(ckpt, point, chunk, wait=False):
    code = SCRIPT.format(point=point, chunk=chunk, ckpt=str(ckpt), wait=wait)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------- kills (items 2 and 17)

@pytest.mark.parametrize("point, chunk", [("manifest-tmp", -1), ("chunk-tmp", 0), ("chunk-tmp", 2),
                                          ("chunk-renamed", 2), ("chunk-recorded", 2), ("chunk-recorded", 4)])
def test_a_kill_at_any_point_resumes_identically(tmp_path, fresh, point, chunk):
    ckpt = tmp_path / "study.ckpt"
    proc = _process(ckpt, point, chunk)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err  # killed at the hook, deterministically
    if point.endswith("tmp"):
        assert _leftovers(ckpt), "the kill left a temporary file, as a real kill would"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # a kill never damages a finished chunk
        resumed = rn.sweep(**ARGS, checkpoint=ckpt)
    _assert_same(resumed, fresh)
    assert _leftovers(ckpt) == []
    manifest = json.loads((ckpt / "sweep.json").read_text())
    assert sorted(manifest["chunks"]) == [str(c) for c in range(5)]
    assert sorted(p.name for p in ckpt.glob("chunk-*")) == [f"chunk-{c:08d}.npz" for c in range(5)]


def test_resume_runs_only_the_chunks_not_finished(tmp_path, monkeypatch):
    ckpt = tmp_path / "study.ckpt"
    proc = _process(ckpt, "chunk-recorded", 2)
    proc.communicate(timeout=300)
    ran = []
    real = executors.start_chunk
    monkeypatch.setattr(executors, "start_chunk", lambda plan, c, *args, **kwargs: ran.append(c) or real(plan, c, *args,
                                                                                                            **kwargs))
    rn.sweep(**ARGS, checkpoint=ckpt)
    assert ran == [3, 4]


def test_resume_skips_finished_chunks(tmp_path, monkeypatch):
    first = rn.sweep(**ARGS, checkpoint=tmp_path / "c")
    monkeypatch.setattr(executors, "start_chunk", lambda *a, **k: pytest.fail("must not run"))
    _assert_same(first, rn.sweep(**ARGS, checkpoint=tmp_path / "c"))


# --------------------------------------------------------------------------- two processes (item 3)

def test_a_second_sweep_on_a_checkpoint_in_use_is_refused_naming_the_holder(tmp_path, fresh):
    ckpt = tmp_path / "study.ckpt"
    holder = _process(ckpt, "chunk-recorded", 1, wait=True)
    try:
        assert holder.stdout.readline().strip() == "holding"  # the holder now has the lock, mid-sweep
        other = {**ARGS, "grid": {"lr": [0.1, 0.2]}}
        with pytest.raises(RuntimeError, match=rf"in use by another sweep \(process {holder.pid} on "):
            rn.sweep(**other, checkpoint=ckpt)
        with pytest.raises(RuntimeError, match="study.ckpt"):
            rn.sweep(**ARGS, checkpoint=ckpt)
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=300) == 0, holder.stderr.read()
    with pytest.raises(ValueError, match="different arguments"):  # the other grid can never mix in
        rn.sweep(**{**ARGS, "grid": {"lr": [0.1, 0.2]}}, checkpoint=ckpt)
    _assert_same(rn.sweep(**ARGS, checkpoint=ckpt), fresh)
    assert not (ckpt / "lock.owner").exists()


# --------------------------------------------------------------------------- damaged chunks (item 4)

def _rewrite(path, **changes):
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(changes)
    for name in [k for k, val in changes.items() if val is None]:
        del arrays[name]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _truncate(ckpt, path, other):
    path.write_bytes(path.read_bytes()[:100])


def _zero(ckpt, path, other):
    path.write_bytes(bytes(len(path.read_bytes())))


def _flip(ckpt, path, other):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _drop_array(ckpt, path, other):
    _rewrite(path, final_loss=None)


def _copy_other_chunk(ckpt, path, other):
    shutil.copy(ckpt / "chunk-00000002.npz", path)


def _copy_other_sweep(ckpt, path, other):
    shutil.copy(other / path.name, path)


def _edit_values(ckpt, path, other):
    with np.load(path) as data:
        _rewrite(path, final_loss=data["final_loss"] * 0.5)  # valid-looking, wrong


def _delete(ckpt, path, other):
    path.unlink()


def _copy_other_chunk_and_fix_the_manifest(ckpt, path, other):
    _copy_other_chunk(ckpt, path, other)
    import hashlib

    manifest = json.loads((ckpt / "sweep.json").read_text())
    manifest["chunks"]["1"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (ckpt / "sweep.json").write_text(json.dumps(manifest))


def _edit_values_and_fix_the_manifest(ckpt, path, other):
    with np.load(path) as data:
        _rewrite(path, final_loss=data["final_loss"][:4])  # shape no longer fits the chunk
    import hashlib

    manifest = json.loads((ckpt / "sweep.json").read_text())
    manifest["chunks"]["1"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (ckpt / "sweep.json").write_text(json.dumps(manifest))


DAMAGES = [_truncate, _zero, _flip, _drop_array, _copy_other_chunk, _copy_other_sweep, _edit_values, _delete,
           _copy_other_chunk_and_fix_the_manifest, _edit_values_and_fix_the_manifest]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__.strip("_") for d in DAMAGES])
def test_a_damaged_chunk_is_named_and_recomputed(tmp_path, fresh, damage):
    ckpt, other = tmp_path / "study.ckpt", tmp_path / "other.ckpt"
    rn.sweep(**ARGS, checkpoint=ckpt)
    rn.sweep(**{**ARGS, "steps": 301}, checkpoint=other)  # same shapes, other numbers
    damage(ckpt, ckpt / "chunk-00000001.npz", other)
    with pytest.warns(CheckpointWarning, match=r"chunk-00000001\.npz.*computing that chunk again") as caught:
        resumed = rn.sweep(**ARGS, checkpoint=ckpt)
    assert len(caught) == 1
    _assert_same(resumed, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # repaired: the next resume is clean
        _assert_same(rn.sweep(**ARGS, checkpoint=ckpt), fresh)


@pytest.mark.parametrize("content, reason", [(b"{not json", "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
                                             (b"[1, 2]", "format"), (b'{"format": "other"}', "format"),
                                             (b'{"format": "rmsnum.checkpoint/2", "chunks": 3}', "missing")])
def test_a_damaged_manifest_is_a_clear_error(tmp_path, content, reason):
    ckpt = tmp_path / "study.ckpt"
    rn.sweep(**ARGS, checkpoint=ckpt)
    (ckpt / "sweep.json").write_bytes(content)
    with pytest.raises(ValueError, match=rf"sweep\.json is damaged.*{reason}"):
        rn.sweep(**ARGS, checkpoint=ckpt)


def test_a_foreign_directory_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an rmsnum sweep checkpoint"):
        rn.sweep(**ARGS, checkpoint=tmp_path / "c")
    assert (tmp_path / "c" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("change", [dict(steps=51), dict(chunk_size=4), dict(fixed={"eps": 1e-8}),
                                    dict(grid={"lr": np.linspace(0.01, 0.5, 11)}), dict(dtype=np.float32),
                                    dict(record="final")])
def test_a_checkpoint_of_other_arguments_is_refused(tmp_path, change):
    rn.sweep(**ARGS, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="different arguments"):
        rn.sweep(**{**ARGS, **change}, checkpoint=tmp_path / "c")


# --------------------------------------------------------------------------- failed writes (item 6)

def test_a_failed_write_is_cleaned_and_named_and_keeps_the_finished_chunks(tmp_path, fresh, monkeypatch):
    ckpt = tmp_path / "study.ckpt"

    def disk_full(point, chunk):
        if point == "chunk-tmp" and chunk == 2:
            raise OSError(errno.EFBIG, "File too large")
    monkeypatch.setattr(checkpoint_module, "_fault_hook", disk_full)
    with pytest.raises(OSError, match=r"could not write .*chunk-00000002\.npz.*File too large.*2 chunks finished "
                                      r"before are kept") as err:
        rn.sweep(**ARGS, checkpoint=ckpt)
    assert err.value.errno == errno.EFBIG
    assert _leftovers(ckpt) == []
    assert sorted(json.loads((ckpt / "sweep.json").read_text())["chunks"]) == ["0", "1"]
    monkeypatch.setattr(checkpoint_module, "_fault_hook", None)
    ran = []
    real = executors.start_chunk
    monkeypatch.setattr(executors, "start_chunk", lambda plan, c, *args, **kwargs: ran.append(c) or real(plan, c, *args,
                                                                                                            **kwargs))
    _assert_same(rn.sweep(**ARGS, checkpoint=ckpt), fresh)
    assert ran == [2, 3, 4]


def test_a_real_file_size_limit_fails_cleanly(tmp_path):
    """The disk-full case for real: RLIMIT_FSIZE lowered in a subprocess, after a warm-up run (so
    Numba's cache is not what hits the limit); the chunks of record="loss" pass the limit."""
    ckpt = tmp_path / "study.ckpt"
    code = textwrap.dedent(f"""
        import resource, numpy as np, rmsnum as rn
        args = dict(optimizer=rn.RMSProp, objective=rn.quadratic_2d(), x0=(-5.0, -2.0), steps=300,
                    grid={{"lr": np.logspace(-3, 0, 40)}}, chunk_size=20, record="loss", progress=False)
        rn.sweep(**args)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
        try:
            rn.sweep(**args, checkpoint={str(ckpt)!r})
        except OSError as err:
            print("OSError:", err)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "OSError:" in run.stdout and "could not write" in run.stdout and "chunk-00000000.npz" in run.stdout
    assert "File too large" in run.stdout, run.stdout
    assert _leftovers(ckpt) == []


# --------------------------------------------------------------------------- bad paths (item 9)

def test_a_checkpoint_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "start_chunk", lambda *a, **k: pytest.fail("must not run"))
    path = tmp_path / "study.ckpt"
    path.write_text("a file")
    with pytest.raises(ValueError, match=r"checkpoint=.*is a file, not a directory"):
        rn.sweep(**ARGS, checkpoint=path)
    with pytest.raises(ValueError, match="is a file"):
        rn.sweep(**ARGS, checkpoint=path / "inside")
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        rn.sweep(**ARGS, checkpoint=3)
    assert path.read_text() == "a file"
