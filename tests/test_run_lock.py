"""One run directory, one writer: a second run on a locked directory refuses, naming the first."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only
from smile_testing import TINY, compose_cfg

from smile.run_lock import RunDirectoryInUse, RunLock
from smile.train import setup

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys
from smile.run_lock import RunLock
lock = RunLock(sys.argv[1]).acquire()  # held while the object lives
print("held", flush=True)
sys.stdin.read()
"""
TRY = """
import sys
from smile.run_lock import RunDirectoryInUse, RunLock
try:
    RunLock(sys.argv[1]).acquire()
except RunDirectoryInUse:
    sys.exit(3)
"""


@contextmanager
def held_elsewhere(run_dir: Path) -> Iterator[subprocess.Popen]:
    """Another process holds ``run_dir``'s lock until the block ends (or the test kills it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=60)


def _locked_elsewhere(run_dir: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rc = subprocess.run([sys.executable, "-c", TRY, str(run_dir)], env=env, timeout=60).returncode
    assert rc in (0, 3)
    return rc == 3


def test_a_second_run_refuses_naming_the_first_and_starts_once_it_is_gone(tmp_path):
    cfg = compose_cfg([*TINY, "trainer.max_steps=1"], tmp_path / "run")
    with held_elsewhere(tmp_path / "run") as holder:
        with pytest.raises(RunDirectoryInUse) as err:
            setup(cfg)
        text = str(err.value)
        assert f"run directory {tmp_path / 'run'} is in use by another run (PID {holder.pid} on " in text
        assert socket.gethostname() in text and "started 20" in text and "name=<another name>" in text
        assert not (tmp_path / "run" / "csv").exists()  # refused before writing anything
    r = setup(cfg)  # the holder ended: the lock went with it
    assert r.fit()["global_step"] == 1


def test_a_killed_holder_releases_the_lock(tmp_path):
    with held_elsewhere(tmp_path / "run") as holder:
        assert _locked_elsewhere(tmp_path / "run")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        assert not _locked_elsewhere(tmp_path / "run")


def test_a_run_holds_the_lock_until_fit_ends(tmp_path):
    r = setup(compose_cfg([*TINY, "trainer.max_steps=1"], tmp_path / "run"))
    assert r.lock is not None and _locked_elsewhere(tmp_path / "run")
    assert RunLock(tmp_path / "run").holder()["pid"] == str(os.getpid())
    again = setup(compose_cfg([*TINY, "trainer.max_steps=1", "resume=false"], tmp_path / "run"))  # same process
    again.lock.release()
    assert _locked_elsewhere(tmp_path / "run")  # the first setup still holds it
    r.fit()
    assert not _locked_elsewhere(tmp_path / "run")


def test_only_global_rank_zero_takes_the_lock(tmp_path, monkeypatch):
    for flag in (rank_zero_only, utils_rank_zero_only):  # the DDP trainer sets these process globals
        monkeypatch.setattr(flag, "rank", flag.rank)  # restored afterwards, or later tests log nothing
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's DDP launcher sets in the second process
    monkeypatch.setenv("WORLD_SIZE", "2")
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    with held_elsewhere(tmp_path / "run"):
        r = setup(compose_cfg([*TINY, *ddp], tmp_path / "run"))
        assert r.trainer.global_rank == 1 and r.lock is None


def test_the_command_line_refuses_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "train.py"), *TINY, "trainer.max_steps=1", f"hydra.run.dir={run_dir}"]
    with held_elsewhere(run_dir) as holder:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: run directory {run_dir} is in use by another run (PID {holder.pid} on ")
