import json
import math

import pytest
from footage import footage_320  # noqa: F401 (a fixture)
from smile_testing import write_video

from smile.cli.bench import main


def test_motion_benchmark_writes_json(tmp_path, capsys):
    out = tmp_path / "motion.json"
    assert (
        main(
            [
                "motion",
                "--batch",
                "2",
                "--frames",
                "4",
                "--size",
                "32",
                "--iters",
                "1",
                "--device",
                "cpu",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    stages = {r["stage"] for r in result["results"]}
    assert {"overlay: trajectories + compositing", "trajectory mask (tube+traj_mask)", "tube mask"} <= stages
    assert all(r["ms_per_clip"] > 0 and r["clips_per_s"] > 0 for r in result["results"])
    assert "smile-bench motion" in capsys.readouterr().out


def test_decode_benchmark_covers_each_backend(tmp_path):
    video = write_video(tmp_path / "v.mp4", 40)
    out = tmp_path / "decode.json"
    assert main(["decode", str(video), "--clips", "2", "--frames", "4", "--rate", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["stage"] for r in rows] == ["decode decord", "decode pyav"]
    assert all(r["frame_shape"] == "4x48x64x3" for r in rows)


def test_decode_benchmark_gives_one_row_per_video(tmp_path):
    small = write_video(tmp_path / "small.mp4", 40)
    wide = write_video(tmp_path / "wide.mp4", 30, width=96, height=32)
    out = tmp_path / "decode.json"
    args = ["decode", str(small), str(wide), "--backends", "pyav", "--clips", "1", "--frames", "4", "--rate", "2"]
    assert main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["video"], r["frame_shape"]) for r in rows] == [("small.mp4", "4x48x64x3"), ("wide.mp4", "4x32x96x3")]
    assert all(r["ms_per_clip"] > 0 for r in rows)


def test_step_benchmark_counts_flops_and_throughput(tmp_path):
    out = tmp_path / "step.json"
    overrides = [
        "video=tiny",
        "model/encoder=vit_tiny",
        "data/motion=objects",
        "data/masking=trajectory",
        "data.masking.ratio=0.5",
        "data.batch_size=2",
    ]
    assert main(["step", *overrides, "--steps", "1", "--warmup", "0", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["clips_per_s"] > 0 and row["gflop_per_clip"] > 0 and row["peak_mem_gib"] > 0
    assert row["tflops"] == pytest.approx(row["gflop_per_clip"] * row["clips_per_s"] / 1e3, rel=1e-6)


def test_data_benchmark_times_each_stage_and_sizes_the_workers(tmp_path, capsys):
    out = tmp_path / "data.json"
    overrides = [
        "video=tiny",
        "data/motion=objects",
        "data/masking=trajectory",
        "data.batch_size=2",
        "data.train_dataset.num_samples=8",
    ]
    args = ["data", *overrides, "--batches", "2", "--device", "cpu", "--target-clips-per-s", "400", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    rows = {r["stage"]: r for r in result["results"]}
    assert list(rows) == [
        "dataset item (decode, augment)",
        "collate",
        "worker = item + collate",
        "on_after_batch_transfer (cpu)",
    ]
    for row in rows.values():
        assert math.isfinite(row["ms_per_clip"]) and row["ms_per_clip"] > 0
        assert math.isfinite(row["clips_per_s"]) and row["clips_per_s"] > 0
    worker = rows["worker = item + collate"]
    assert worker["ms_per_clip"] == pytest.approx(
        rows["dataset item (decode, augment)"]["ms_per_clip"] + rows["collate"]["ms_per_clip"]
    )
    ctx = result["context"]
    assert ctx["clips"] == 4 and ctx["motion"] and ctx["masking"] == "TrajectoryMasking"
    assert ctx["workers_needed"] == worker["workers_for_target"] == math.ceil(400 / worker["clips_per_s"])
    assert "smile-bench data" in capsys.readouterr().out


def test_data_benchmark_on_real_videos_splits_stages_and_compares_with_the_reference(footage_320, tmp_path, capsys):  # noqa: F811
    import argparse

    from smile.cli.bench.data import _data_main
    from smile.cli.bench.stages import STAGES

    out = tmp_path / "stages.json"
    overrides = ["video=tiny", "data=list", f"data.train_dataset.list_file={footage_320}", "data.batch_size=4"]
    overrides.append("data.train_dataset.repeats=2")
    args = argparse.Namespace(
        overrides=overrides, batches=1, device="cpu", target_clips_per_s=400.0, threads=0, baseline=True, json=out
    )
    assert _data_main(args) == 0
    result = json.loads(out.read_text())
    ours, ref = result["results"]
    assert ours["row"] == "ours (auto, R=2)" and ref["row"].startswith("baseline (reference: decord + PIL")
    for row in (ours, ref):
        parts = [row[f"{s} ms"] for s in STAGES]
        assert all(math.isfinite(p) and p >= 0 for p in parts)
        assert sum(parts) == pytest.approx(row["total ms/clip"], rel=1e-9)
        assert row["clips/s per worker"] == pytest.approx(1e3 / row["total ms/clip"], rel=1e-9)
        assert row["workers for target"] == math.ceil(400 / row["clips/s per worker"])
    ctx = result["context"]
    assert ctx["ratio"] == pytest.approx(ref["total ms/clip"] / ours["total ms/clip"], rel=1e-12)
    assert ctx["repeats"] == 2 and ctx["videos"] == 3
    printed = capsys.readouterr().out
    assert "real videos" in printed and f"{ctx['ratio']:.2f}x the reference" in printed
