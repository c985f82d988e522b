"""W&B logging, offline: run config with the git commit, metrics, media, sweep groups, the sync hint."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from smile.callbacks.loggers import git_metadata, wandb_run_names
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


def offline_run(save_dir: Path) -> tuple[Path, dict, list[dict], object]:
    """(run dir, config, history rows, run record) of the single offline run under ``save_dir``."""
    (run_dir,) = (save_dir / "wandb").glob("offline-run-*")
    records = wandb_records(next(run_dir.glob("run-*.wandb")))
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
    runs = [offline_run(job) for job in sorted((tmp_path / "multirun" / "default").glob("seed=*"))]
    assert len(runs) == 2
    assert {r[3].run_group for r in runs} == {"multirun/default"}
    assert [r[3].display_name for r in runs] == ["default/seed=1", "default/seed=2"]
    assert runs[0][3].run_id != runs[1][3].run_id
