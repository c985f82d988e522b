"""Checkpoint writes are atomic on any filesystem: staged next to the destination, fsync'ed, renamed.

A save that fails or is killed half-way leaves the previous complete file under the final name, no
truncated file, nothing in ``$TMPDIR``, and its partial temporary file is removed at the next start.
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from smile_testing import TINY, compose_cfg

from smile.build import build_trainer
from smile.callbacks.checkpoint_io import AtomicCheckpointIO, atomic_save, remove_stale_temp_files
from smile.train import run

ROOT = Path(__file__).resolve().parents[1]
OLD = {"state_dict": {"w": torch.full((1000,), 3.0)}, "global_step": 3, "loops": {}}
# The killed writer: torch.save writes half of the real bytes, says so, then hangs until killed.
KILLED_WRITER = """
import io, sys, time, torch
from smile.callbacks.checkpoint_io import AtomicCheckpointIO
real = torch.save
def half_then_hang(obj, f, *args, **kwargs):
    buf = io.BytesIO()
    real(obj, buf)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    print("HALF", f.name, len(data), flush=True)
    time.sleep(600)
torch.save = half_then_hang
big = {"state_dict": {"w": torch.ones(8_000_000)}, "global_step": 9, "loops": {}}  # 32 MB
AtomicCheckpointIO().save_checkpoint(big, sys.argv[1])
"""


def _loads_as_old(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["global_step"] == 3 and torch.equal(ckpt["state_dict"]["w"], OLD["state_dict"]["w"])


def _temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if re.fullmatch(r"\..+\.tmp-\d+", p.name)]


def test_the_temporary_file_is_made_in_the_destination_dir_not_tmpdir(tmp_path, monkeypatch):
    tmpdir, dest = tmp_path / "tmpdir", tmp_path / "run" / "checkpoints"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    real, staged = torch.save, []

    def spy(obj, f, *args, **kwargs):
        staged.append(Path(f.name))
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", spy)
    AtomicCheckpointIO().save_checkpoint(OLD, dest / "last.ckpt")
    assert len(staged) == 1 and staged[0].parent == dest
    assert staged[0].name == f".last.ckpt.tmp-{os.getpid()}"
    assert sorted(p.name for p in dest.iterdir()) == ["last.ckpt"] and not list(tmpdir.iterdir())
    _loads_as_old(dest / "last.ckpt")


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_save_that_fails_half_way_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    target = tmp_path / "last.ckpt"
    atomic_save(OLD, target)
    real = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise failure

    monkeypatch.setattr(torch, "save", half_then_fail)
    new = {"state_dict": {"w": torch.zeros(100_000)}, "global_step": 5, "loops": {}}
    with pytest.raises(type(failure)) as err:
        AtomicCheckpointIO().save_checkpoint(new, target)
    if isinstance(failure, OSError):  # a full disk: the message names the file and says it is unchanged
        assert str(target) in str(err.value) and "no space left" in str(err.value)
        assert "previous file under that name is unchanged" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # the temp file is gone
    _loads_as_old(target)


def _kill_a_writer_half_way(dest_dir: Path, tmpdir: Path) -> Path:
    """A subprocess saves into ``dest_dir/last.ckpt`` and is SIGKILLed half-way; returns its temp file."""
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(dest_dir / "last.ckpt")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until half the file is written (or the child died)
        assert line.startswith("HALF"), f"writer failed: {line}{proc.stderr.read() if proc.poll() else ''}"
        _, staged, total = line.split()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    staged_path = Path(staged)
    assert staged_path.parent == dest_dir and staged_path.name == f".last.ckpt.tmp-{proc.pid}"
    assert 0 < staged_path.stat().st_size < int(total)  # the partial bytes are in the temp file...
    _loads_as_old(dest_dir / "last.ckpt")  # ...never under the final name
    assert not [p for p in tmpdir.rglob("*") if p.is_file()]  # and nothing leaked into $TMPDIR (wandb makes empty dirs)
    return staged_path


def test_sigkill_during_a_save_leaves_the_previous_file_and_the_next_start_cleans_up(tmp_path):
    run_dir, tmpdir = tmp_path / "run", tmp_path / "tmpdir"
    ckpt_dir = run_dir / "checkpoints"
    tmpdir.mkdir()
    atomic_save(OLD, ckpt_dir / "last.ckpt")
    staged = _kill_a_writer_half_way(ckpt_dir, tmpdir)
    assert _temp_files(ckpt_dir) == [staged]

    out = run(compose_cfg([*TINY, "trainer.max_steps=1", "resume=false"], run_dir))  # the next start
    assert out["global_step"] == 1
    assert not _temp_files(ckpt_dir) and (ckpt_dir / "last.ckpt").is_file()


def test_temp_files_of_live_writers_are_kept(tmp_path):
    mine = tmp_path / f".a.ckpt.tmp-{os.getpid()}"  # this process is not saving: stale
    live = tmp_path / f".b.ckpt.tmp-{os.getppid()}"  # the parent process is alive: maybe saving
    other = tmp_path / ".notes.txt"
    for p in (mine, live, other):
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == [mine]
    assert live.exists() and other.exists()


def _configs() -> list[pytest.param]:
    cpu = ["trainer.accelerator=cpu", "trainer.precision=32-true"]
    gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="FSDP needs CUDA")
    return [
        pytest.param(["trainer=cpu"], id="cpu"),
        pytest.param(["trainer=gpu", *cpu], id="gpu"),
        pytest.param(["trainer=ddp", *cpu, "trainer.devices=2"], id="ddp"),
        pytest.param(["trainer=slurm", *cpu, "trainer.devices=2"], id="slurm"),
        pytest.param(["trainer=fsdp", "trainer.devices=1"], id="fsdp", marks=[pytest.mark.gpu, gpu]),
    ]


@pytest.mark.parametrize("overrides", _configs())
def test_every_trainer_config_writes_through_the_atomic_io(tmp_path, monkeypatch, overrides):
    if "trainer=slurm" in overrides:  # what srun sets for task 0 of a 2-task job on one node
        slurm = {"NODEID": "0", "PROCID": "0", "LOCALID": "0", "NTASKS": "2", "NTASKS_PER_NODE": "2", "JOB_NAME": "t"}
        for key, value in slurm.items():
            monkeypatch.setenv(f"SLURM_{key}", value)
    trainer = build_trainer(compose_cfg([*TINY, *overrides], tmp_path))
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.slow  # mounts two small tmpfs filesystems: needs root
def test_kill_and_full_disk_on_another_filesystem_leave_no_truncated_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts = [tmp_path / "shared", tmp_path / "tiny"]
    for mnt, size in zip(mounts, ("128m", "1m"), strict=True):
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode != 0:
            pytest.skip("mount -t tmpfs is not permitted here")
    try:
        assert os.stat(mounts[0]).st_dev != os.stat(tmp_path).st_dev  # really another filesystem
        tmpdir = tmp_path / "tmpdir"
        tmpdir.mkdir()
        atomic_save(OLD, mounts[0] / "last.ckpt")
        staged = _kill_a_writer_half_way(mounts[0], tmpdir)
        assert remove_stale_temp_files(mounts[0]) == [staged]

        atomic_save(OLD, mounts[1] / "last.ckpt")  # 1 MB filesystem, 4 MB checkpoint: disk full
        with pytest.raises(OSError, match="no space left"):
            atomic_save({"state_dict": {"w": torch.ones(1_000_000)}, "global_step": 5}, mounts[1] / "last.ckpt")
        assert sorted(p.name for p in mounts[1].iterdir()) == ["last.ckpt"]
        _loads_as_old(mounts[1] / "last.ckpt")
    finally:
        for mnt in mounts:
            subprocess.run(["umount", str(mnt)], check=False)
