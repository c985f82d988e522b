"""smile-vis on a generated video with a checkpoint from a tiny training run."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from smile_testing import TINY, compose_cfg, write_video

from smile.cli.vis import main, overlay_and_mask, read_video
from smile.train import run

S, T, P = 32, 4, 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, video): a 3-step pixel-target run whose .hydra/config.yaml sits beside checkpoints/."""
    root = tmp_path_factory.mktemp("vis")
    cfg = compose_cfg([*TINY, "trainer.max_steps=3", "callbacks.media.every_n_steps=0"], root / "run")
    out = run(cfg)
    (root / "run" / ".hydra").mkdir()
    OmegaConf.save(cfg, root / "run" / ".hydra" / "config.yaml")  # what @hydra.main writes
    return Path(out["last_checkpoint"]), write_video(root / "clip.mp4", 40)


def _rows(strip: np.ndarray) -> list[np.ndarray]:
    """The strip's 4 rows as frames [T, S, S, 3]."""
    return [strip[r * S : (r + 1) * S].reshape(S, T, S, 3).transpose(1, 0, 2, 3) for r in range(4)]


def test_strip_and_video_of_a_masked_prediction(trained, tmp_path):
    ckpt, video = trained
    assert main([str(ckpt), str(video), "--out", str(tmp_path), "--objects", "2", "--mask-ratio", "0.5"]) == 0
    strip = np.asarray(Image.open(tmp_path / "clip_strip.png").convert("RGB"))
    assert strip.shape == (4 * S, T * S, 3)  # original, overlaid, masked, predicted x T frames of S px
    original, overlaid, masked, predicted = _rows(strip)
    assert not np.array_equal(original, overlaid)  # objects were pasted
    clip = read_video(video, T, S, 4)
    _, mask = overlay_and_mask(clip, 2, 0.5, 0, P, 2)  # the same seed: the mask smile-vis drew
    assert int(mask.sum()) == 4  # 50 % of 2x2x2 tokens
    hidden = mask.view(2, 2, 2).repeat_interleave(2, 0).repeat_interleave(P, 1).repeat_interleave(P, 2).numpy()
    assert (masked[hidden] == 0).all()
    assert np.array_equal(masked[~hidden], overlaid[~hidden])
    assert np.array_equal(predicted[~hidden], overlaid[~hidden])  # visible cubes are shown as they were
    with av.open(str(tmp_path / "clip.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == T and frames[0].shape == (S, 4 * S, 3)


def test_gif_without_objects_and_other_geometry(trained, tmp_path):
    ckpt, video = trained
    args = [str(ckpt), str(video), "--out", str(tmp_path), "--objects", "0", "--gif", "--frames", "8", "--size", "48"]
    assert main(args) == 0
    gif = Image.open(tmp_path / "clip.gif")
    assert gif.n_frames == 8 and gif.size == (4 * 48, 48)
    strip = np.asarray(Image.open(tmp_path / "clip_strip.png").convert("RGB"))
    assert strip.shape == (4 * 48, 8 * 48, 3)
    assert np.array_equal(strip[:48], strip[48:96])  # no objects: the overlaid row is the original


def test_missing_or_unreadable_inputs_name_the_file(trained, tmp_path):
    ckpt, video = trained
    with pytest.raises(SystemExit, match="nope.ckpt"):
        main([str(tmp_path / "nope.ckpt"), str(video), "--out", str(tmp_path)])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(SystemExit, match="broken.mp4"):
        main([str(ckpt), str(broken), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="missing.mp4"):
        main([str(ckpt), str(tmp_path / "missing.mp4"), "--out", str(tmp_path)])
    lone = tmp_path / "lone.ckpt"
    lone.write_bytes(ckpt.read_bytes())
    with pytest.raises(SystemExit, match="--config"):  # no run config beside it
        main([str(lone), str(video), "--out", str(tmp_path)])
    assert not list(tmp_path.glob("*.png"))
