"""W&B logging, offline: run config with the git commit, metrics, media, sweep groups, the sync hint;
online runs that cannot reach W&B fall back to offline (no test touches the network)."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lightning.pytorch.loggers import WandbLogger

from smile.build import build_loggers
from smile.callbacks import loggers
from smile.callbacks.loggers import finish_wandb, git_metadata, wandb_run_names
from smile.train import run

ROOT = Path(__file__).resolve().parents[1]


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline ``run-*.wandb`` file (LevelDB-style log: 32 KiB blocks,
    7-byte record headers crc32/length/type, after a 7-byte ``:W&B`` file header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf, out = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # block trailer padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
            buf = b""
    return out


def finished_records(path: Path, patience_s: float = 120.0) -> list:
    """The records of a finished run's file, once wandb's service has written them all.

    ``run.finish()`` returns before the service process flushes the file (on a loaded machine it
    can still hold only its 7-byte header), so wait for the ``exit`` record that closes every run.
    """
    deadline = time.monotonic() + patience_s
    while True:
        records = wandb_records(path)
        if any(r.HasField("exit") for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def offline_run(save_dir: Path) -> tuple[Path, dict, list[dict], object]:
    """(run dir, config, history rows, run record) of the single offline run under ``save_dir``."""
    (run_dir,) = (save_dir / "wandb").glob("offline-run-*")
    records = finished_records(next(run_dir.glob("run-*.wandb")))
    config = {u.key: json.loads(u.value_json) for r in records if r.HasField("config") for u in r.config.update}
    history = [
        {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.HasField("history")
    ]
    (run_record,) = [r.run for r in records if r.HasField("run")]
    return run_dir, config, history, run_record


def test_offline_wandb_run_has_config_commit_metrics_and_media(tiny_cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    cfg = tiny_cfg(
        "logger=wandb",
        "logger.wandb.tags=[tiny,test]",
        "data/motion=objects",
        "data/masking=trajectory",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "callbacks.media.every_n_steps=2",
    )
    run(cfg)
    run_dir, config, history, record = offline_run(Path(cfg.paths.output_dir))
    meta = git_metadata()  # {} when the tests run outside a git checkout
    assert config.get("git_commit") == meta.get("git_commit") and config.get("git_dirty") == meta.get("git_dirty")
    assert not meta or len(config["git_commit"]) == 40
    assert config["video"]["img_size"] == 32 and config["data"]["masking"]["_target_"].endswith("TrajectoryMasking")
    assert record.project == "smile" and record.run_group == "default" and record.display_name == "default"
    assert list(record.tags) == ["tiny", "test"] and record.job_type == "pretrain"
    losses = [row["train/loss"] for row in history if "train/loss" in row]
    norms = [row["train/grad_norm"] for row in history if "train/grad_norm" in row]
    assert len(losses) == 4 and len(norms) == 4
    media_steps = sorted({row["trainer/global_step"] for row in history if "media/clip0/_type" in row})
    assert media_steps == [2, 4]
    images = list((run_dir / "files" / "media" / "images").rglob("*.png"))
    videos = list((run_dir / "files" / "media" / "videos").rglob("*.gif"))
    assert len(images) == 4 and len(videos) == 4  # 2 clips x 2 steps each
    assert len(list((Path(cfg.paths.output_dir) / "media").glob("*.png"))) == 4  # the files on disk as well
    assert f"wandb sync {run_dir.resolve()}" in capsys.readouterr().out
    import wandb

    assert wandb.run is None  # finished: the next run in this process (next multirun job) starts a new one


def test_wandb_names_group_a_sweep_by_its_directory(tmp_path):
    assert wandb_run_names("demo") == ("demo", "demo")
    assert wandb_run_names("demo", "seed=1") == ("demo", "demo/seed=1")
    sweep = tmp_path / "out" / "multirun" / "demo"
    assert wandb_run_names("demo", "lr=0.1", str(sweep), str(tmp_path / "out")) == ("multirun/demo", "demo/lr=0.1")
    assert wandb_run_names("demo", "lr=0.1", "/elsewhere/sweep7", str(tmp_path / "out"))[0] == "sweep7"


def test_git_metadata_is_empty_outside_git(tmp_path):
    assert git_metadata(tmp_path) == {}


@pytest.mark.slow
def test_multirun_jobs_share_one_wandb_group(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "logger=wandb", "~callbacks.progress_bar"]
    cmd += ["trainer.max_steps=2", "seed=1,2"]
    subprocess.run(cmd, env=env, check=True, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = [offline_run(job) for job in sorted((tmp_path / "multirun" / "default").glob("seed-*"))]
    assert len(runs) == 2
    assert {r[3].run_group for r in runs} == {"multirun/default"}
    assert [r[3].display_name for r in runs] == ["default/seed-1", "default/seed-2"]
    assert runs[0][3].run_id != runs[1][3].run_id


@pytest.fixture
def online_wandb(tiny_cfg, monkeypatch):
    """A ``logger.wandb.offline=false`` config, outside the test suite's ``WANDB_MODE=offline``."""
    monkeypatch.delenv("WANDB_MODE", raising=False)  # restored after the test, whatever wandb set meanwhile
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    return tiny_cfg("logger=wandb", "logger.wandb.offline=false", "logger.wandb.log_model=true")


def test_unreachable_wandb_host_falls_back_to_offline_with_a_warning(online_wandb, monkeypatch, caplog):
    probed = []
    monkeypatch.setattr(loggers, "wandb_reachable", lambda timeout: probed.append(timeout) or False)
    with caplog.at_level(logging.WARNING, logger="smile.callbacks.loggers"):
        (lg,) = build_loggers(online_wandb)
    assert isinstance(lg, WandbLogger) and lg._offline is True and lg._log_model is False
    assert probed == [5]  # logger.wandb.connect_timeout
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "logger.wandb.offline=false" in warning and "api.wandb.ai:443" in warning and "offline instead" in warning
    run = lg.experiment  # the run wandb starts is an offline one, in the run directory
    try:
        assert run.offline and os.environ["WANDB_MODE"] == "dryrun"
        assert Path(run.settings.sync_dir).is_relative_to(Path(online_wandb.paths.output_dir))
    finally:
        finish_wandb([lg])


def test_reachable_wandb_host_stays_online(online_wandb, monkeypatch, caplog):
    monkeypatch.setattr(loggers, "wandb_reachable", lambda timeout: True)
    with caplog.at_level(logging.WARNING, logger="smile.callbacks.loggers"):
        (lg,) = build_loggers(online_wandb)
    assert lg._offline is False and lg._log_model is True and not caplog.records


@pytest.mark.parametrize("mode", [None, "offline"])
def test_offline_runs_never_probe_the_network(tiny_cfg, monkeypatch, mode):
    """``offline: true`` (the default) or ``WANDB_MODE=offline`` with ``offline=false``: no probe."""
    monkeypatch.setattr(loggers, "wandb_reachable", lambda timeout: pytest.fail("probed the network"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = ["logger=wandb"] if mode is None else ["logger=wandb", "logger.wandb.offline=false"]
    (lg,) = build_loggers(tiny_cfg(*overrides))
    assert lg._offline is (mode is None)


def test_wandb_host_comes_from_wandb_base_url(monkeypatch):
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    assert loggers.wandb_host() == ("api.wandb.ai", 443)
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org:8443")
    assert loggers.wandb_host() == ("wandb.example.org", 8443)
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.local")
    assert loggers.wandb_host() == ("wandb.local", 80)


def test_probe_connects_to_the_configured_host_only(monkeypatch):
    """A listening local port answers, a closed one does not (no traffic leaves the machine)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert loggers.wandb_reachable(10.0) is True
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed.getsockname()[1]}")
        assert loggers.wandb_reachable(10.0) is False


def test_probe_gives_up_after_its_timeout_even_if_the_lookup_hangs(monkeypatch):
    """``create_connection``'s own timeout does not bound a hanging name lookup; the probe's thread does."""
    release, entered = threading.Event(), threading.Event()

    def hang(address, timeout):
        entered.set()
        release.wait()  # a DNS lookup that never answers, until the test lets it go
        raise OSError("no network")

    monkeypatch.setattr(loggers.socket, "create_connection", hang)
    try:
        assert loggers.wandb_reachable(0.05) is False
        assert entered.is_set() and not release.is_set()  # returned while the connection attempt still hung
    finally:
        release.set()
