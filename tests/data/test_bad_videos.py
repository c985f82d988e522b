"""Unreadable videos are judged once, in the main process: distinct files over all workers (and
ranks), an absolute allowance next to the fraction, and a stop whose report is the last output."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from smile_testing import write_video

import smile.data.badvideos as badvideos
from smile.data import VideoDataModule
from smile.data.badvideos import SYNC_EVERY, BadVideoMonitor, BadVideoPolicy, TooManyBadVideos
from smile.data.datasets.list import VideoListDataset
from smile.data.sampler import ResumableSampler
from smile.train import run

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"num_frames": 4, "sampling_rate": 4, "img_size": 32}
LOGGER = "smile.data.badvideos"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny real videos and six distinct corrupt files."""
    root = tmp_path_factory.mktemp("badvideos")
    for k in range(3):
        write_video(root / f"good{k}.mp4", 24)
    for k in range(6):
        (root / f"bad{k}.mp4").write_bytes(np.random.default_rng(k).bytes(2048))
    return root


def make_list(root: Path, n: int, bad: int, name: str) -> tuple[Path, list[int]]:
    """``n`` entries (real videos, repeated) with ``bad`` distinct corrupt ones spread through it."""
    lines = [f"good{i % 3}.mp4 {i % 2}" for i in range(n)]
    positions = [int((k + 0.5) * n / bad) for k in range(bad)]
    for k, pos in enumerate(positions):
        lines[pos] = f"bad{k}.mp4 0"
    path = root / name
    path.write_text("".join(line + "\n" for line in lines))
    return path, positions


def bad_paths(media: Path, count: int) -> set[str]:
    return {str(media / f"bad{k}.mp4") for k in range(count)}


def consume(dm: VideoDataModule) -> list[dict]:
    """One epoch of training batches through the main-process hook (no trainer)."""
    return [dm.on_after_batch_transfer(batch, 0) for batch in dm.train_dataloader()]


def test_the_stop_is_identical_at_0_and_2_workers(media, tiny_cfg, tmp_path):
    lst, positions = make_list(media, 50, 6, "six_of_fifty.txt")
    base = ["data=list", f"data.train_dataset.list_file='{lst}'", "data.batch_size=5", "trainer.max_epochs=2"]
    errors = {}
    for workers in (0, 2):
        with pytest.raises(TooManyBadVideos) as err:
            run(tiny_cfg(*base, f"data.num_workers={workers}", out=tmp_path / f"w{workers}"))
        errors[workers] = err.value
    assert str(errors[0]) == str(errors[2])
    assert errors[0].bad_videos == errors[2].bad_videos
    assert set(errors[0].bad_videos) == bad_paths(media, 6)
    # The stop comes at the batch whose files push the distinct count past 5 (epoch 0 order, batches of 5).
    order = list(ResumableSampler(50, seed=0))
    seen = [len(set(order[: 5 * (b + 1)]) & set(positions)) for b in range(10)]
    stop_batch = next(b for b, count in enumerate(seen) if count > 5)
    message = str(errors[0])
    assert f"in epoch 0, after {stop_batch} training steps" in message
    assert message.startswith("Too many unreadable videos: 6 distinct videos of the 50 in ")
    assert "more than max_bad_videos allows. The limit is 5 = max(max_bad_videos=5, " in message
    assert "floor(max_bad_fraction=0.01 x 50) = 0)" in message
    assert message.splitlines()[-1] == (
        "Fix or remove them, or allow more: data.train_dataset.max_bad_videos=6 "
        "or data.train_dataset.max_bad_fraction=0.12"
    )
    listed = [line.strip().split(":")[0] for line in message.splitlines()[2:-1]]
    assert sorted(listed) == sorted(bad_paths(media, 6))


def test_three_bad_of_twenty_pass_counted_and_logged_once_per_file(media, tiny_cfg, tmp_path, caplog):
    lst, _ = make_list(media, 20, 3, "three_of_twenty.txt")
    overrides = ["data=list", f"data.train_dataset.list_file='{lst}'", "data.batch_size=4", "data.num_workers=2"]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = run(tiny_cfg(*overrides, "trainer.max_epochs=2", "trainer.log_every_n_steps=1", out=tmp_path / "r"))
    assert out["global_step"] == 10  # 2 epochs of 5 batches: 3 bad files are within max_bad_videos=5
    warned = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warned) == 3  # once per file and run, although 2 workers met each file in both epochs
    assert {_file_of(m, media) for m in warned} == bad_paths(media, 3)
    assert all("data.train_dataset.max_bad_videos" in m for m in warned)
    rows = (tmp_path / "r" / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = header.index("data/skipped_videos")
    counts = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert len(counts) == 10 and counts[-1] == 3.0  # distinct files, not the 6 skip events
    assert counts == sorted(counts)


def _file_of(message: str, media: Path) -> str:
    match = re.search(re.escape(str(media)) + r"/bad\d\.mp4", message)
    assert match, message
    return match.group(0)


def test_six_bad_of_twenty_stop_naming_max_bad_videos(media):
    lst, _ = make_list(media, 20, 6, "six_of_twenty.txt")
    dm = VideoDataModule(VideoListDataset(lst, **SMALL), batch_size=4, pin_memory=False)
    with pytest.raises(TooManyBadVideos) as err:
        consume(dm)
    lines = str(err.value).splitlines()
    assert "6 distinct videos of the 20" in lines[0] and "more than max_bad_videos allows" in lines[0]
    assert lines[1] == "Unreadable videos (6):" and len(lines) == 9
    assert "data.train_dataset.max_bad_videos=6" in lines[-1] and "data.train_dataset.max_bad_fraction=0.3" in lines[-1]


def test_the_fraction_binds_on_large_lists_and_long_lists_are_cut():
    policy = BadVideoPolicy([f"/v/{i}.mp4" for i in range(1000)], 0.01, "big.csv", max_bad_videos=5)
    assert policy.max_bad == 10
    bad = {f"/v/{i}.mp4": f"/v/{i}.mp4: pyav failed to open the file" for i in range(25)}
    lines = policy.explain(bad, "somewhere").splitlines()
    assert "more than max_bad_fraction allows. The limit is 10" in lines[0]
    assert lines[2] == "  /v/0.mp4: pyav failed to open the file"  # the reason already names the file
    assert lines[-2].startswith("  ... and 5 more")
    assert lines[-1] == "Fix or remove them, or allow more: max_bad_videos=25 or max_bad_fraction=0.025"


def test_a_resumed_run_keeps_its_files_counted_and_does_not_log_them_again(media, caplog):
    lst, _ = make_list(media, 20, 3, "resume.txt")
    first = VideoDataModule(VideoListDataset(lst, **SMALL), batch_size=4, pin_memory=False)
    assert sum(int(b["skipped"].sum()) for b in consume(first)) == 3
    state = first.state_dict()
    assert set(state["bad_videos"]["data.train_dataset"]) == bad_paths(media, 3)

    again = VideoDataModule(VideoListDataset(lst, **SMALL), batch_size=4, pin_memory=False)
    again.load_state_dict(state)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        batches = consume(again)
    assert not [r for r in caplog.records if r.name == LOGGER]
    assert [int(b["skipped"].sum()) for b in batches] == [3, 0, 0, 0, 0]  # the restored count, reported once
    assert again.state_dict() == state

    strict = VideoDataModule(VideoListDataset(lst, max_bad_videos=2, **SMALL), batch_size=4, pin_memory=False)
    strict.load_state_dict(state)
    with pytest.raises(TooManyBadVideos, match="3 distinct videos of the 20") as err:
        consume(strict)
    assert set(err.value.bad_videos) == bad_paths(media, 3)


def test_ranks_pool_their_files_and_stop_together(monkeypatch):
    policy = BadVideoPolicy([f"/v/{i}.mp4" for i in range(100)], 0.0, "list.csv", max_bad_videos=5)
    trainer = SimpleNamespace(world_size=2, state=SimpleNamespace(stage="train"), global_step=7, current_epoch=1)
    dataset = SimpleNamespace(policy=policy)
    holder = SimpleNamespace(trainer=trainer, train_dataset=dataset, val_dataset=None, test_dataset=None)
    monitor = BadVideoMonitor(dataset)
    other_rank = {f"/v/{i}.mp4": "other rank" for i in (50, 51, 52)}
    pooled: list[dict] = []

    def fake_pool(found: dict[str, str], world: int) -> dict[str, str]:
        pooled.append(dict(found))
        return {**found, **other_rank}

    monkeypatch.setattr(badvideos, "_pool", fake_pool)
    mine = [{f"/v/{i}.mp4": "mine"} for i in range(3)] + [{}] * (SYNC_EVERY - 3)
    for step, found in enumerate(mine):
        batch = {"bad_videos": [json.dumps(found) if found else "", ""], "skipped": torch.zeros(2, dtype=torch.int64)}
        if step < SYNC_EVERY - 1:
            monitor.observe(batch, holder)  # 3 of mine: below the limit, no stop between pooling steps
            assert "bad_videos" not in batch
    assert pooled == []
    with pytest.raises(TooManyBadVideos, match="6 distinct videos of the 100") as err:
        monitor.observe(batch, holder)
    assert pooled == [{f"/v/{i}.mp4": "mine" for i in range(3)}]
    assert "in epoch 1, after 7 training steps; pooled over 2 processes" in str(err.value)
    assert set(err.value.bad_videos) == {f"/v/{i}.mp4" for i in (0, 1, 2, 50, 51, 52)}


def test_a_stop_inside_a_worker_reads_like_one_in_the_main_process(media, tmp_path):
    lst = tmp_path / "all_bad.txt"
    lst.write_text("".join(f"{media / f'bad{k}.mp4'} 0\n" for k in range(3)))
    dm = VideoDataModule(VideoListDataset(lst, **SMALL), batch_size=1, num_workers=1, pin_memory=False)
    with pytest.raises(TooManyBadVideos) as err:
        consume(dm)
    message = str(err.value)
    assert "Traceback" not in message and "DataLoader worker" not in message
    assert message.startswith("Too many unreadable videos: 3 distinct videos of the 3 in ")
    assert re.search(r"\(item \d and the 2 entries after it all failed\), and no readable video is left", message)
    assert (
        message.splitlines()[-1]
        == f"Check that the paths in {lst} point at the videos (a wrong root makes them all missing)"
    )


def test_train_py_ends_with_the_report_and_no_traceback(media, tmp_path):
    lst, _ = make_list(media, 20, 6, "cli.txt")
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "video=tiny",
        "model/encoder=vit_tiny",
        "trainer=cpu",
        "data=list",
        f"data.train_dataset.list_file={lst}",
        "data.batch_size=4",
        "data.num_workers=2",
        "~callbacks.progress_bar",
        f"hydra.run.dir={tmp_path}/run",
    ]
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    output = done.stdout.rstrip()
    assert done.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    tail = output.splitlines()[-9:]  # the report is the last output: headline, list, keys
    assert "Too many unreadable videos: 6 distinct videos of the 20 in " in tail[0], output[-3000:]
    assert "more than max_bad_videos allows" in tail[0] and tail[1] == "Unreadable videos (6):"
    assert {line.strip().split(":")[0] for line in tail[2:-1]} == bad_paths(media, 6)
    assert tail[-1] == (
        "Fix or remove them, or allow more: data.train_dataset.max_bad_videos=6 "
        "or data.train_dataset.max_bad_fraction=0.3"
    )


def _pool_in_rank(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        pooled = badvideos._pool({f"/v/rank{rank}.mp4": f"reason {rank}"}, 2)
        Path(out_dir, f"{rank}.json").write_text(json.dumps(pooled))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_pooling_gathers_every_ranks_files_over_gloo(tmp_path):
    args = (str(tmp_path / "init"), str(tmp_path))
    torch.multiprocessing.start_processes(_pool_in_rank, args=args, nprocs=2, join=True, start_method="fork")
    expected = {"/v/rank0.mp4": "reason 0", "/v/rank1.mp4": "reason 1"}
    assert [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)] == [expected, expected]
