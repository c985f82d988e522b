"""smile-vis on a generated video with a checkpoint from a tiny training run."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from smile_testing import TINY, compose_cfg, write_video
from test_safe_loading import assert_refused, write_bad_checkpoints

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
    assert strip.shape[0] == 4 * S and strip.shape[1] > T * S  # 4 rows x T frames of S px, named on the left
    assert strip[:, : -T * S].max() > 0  # the row names are drawn
    strip = strip[:, -T * S :]
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
    assert main(args) == 2  # the checkpoint was trained at another geometry: refused unless asked for
    assert main([*args, "--allow-geometry-change"]) == 0
    gif = Image.open(tmp_path / "clip.gif")
    assert gif.n_frames == 8 and gif.size == (4 * 48, 48)
    strip = np.asarray(Image.open(tmp_path / "clip_strip.png").convert("RGB"))
    assert strip.shape[0] == 4 * 48 and strip.shape[1] > 8 * 48
    strip = strip[:, -8 * 48 :]  # without the column of row names
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


def _run_with(trained, root: Path, edit=None, ckpt_bytes: bytes | None = None) -> Path:
    """A copy of the trained run in ``root``: its checkpoint (or ``ckpt_bytes``) and its config after ``edit``."""
    ckpt, _ = trained
    (root / "checkpoints").mkdir(parents=True)
    (root / ".hydra").mkdir()
    copy = root / "checkpoints" / "last.ckpt"
    copy.write_bytes(ckpt.read_bytes() if ckpt_bytes is None else ckpt_bytes)
    cfg = OmegaConf.load(ckpt.parents[1] / ".hydra" / "config.yaml")
    if edit is not None:
        edit(cfg)
    OmegaConf.save(cfg, root / ".hydra" / "config.yaml")
    return copy


def test_hostile_run_config_is_refused_and_runs_nothing(trained, tmp_path, capsys):
    _, video = trained
    sentinel, touched = tmp_path / "precious.txt", tmp_path / "touched"
    sentinel.write_text("keep me")
    hostile = {
        "model.encoder": ("builtins.open", {"_target_": "builtins.open", "file": str(sentinel), "mode": "w"}),
        "logger.csv": ("os.system", {"_target_": "os.system", "_args_": [f"touch {touched}"]}),
    }
    for i, (key, (target, node)) in enumerate(hostile.items()):
        ckpt = _run_with(trained, tmp_path / f"run{i}", lambda cfg, k=key, n=node: OmegaConf.update(cfg, k, n))
        assert main([str(ckpt), str(video), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        config = tmp_path / f"run{i}" / ".hydra" / "config.yaml"
        assert err.startswith(f"smile-vis: error: {config}: `{key}._target_: {target}` is refused"), err
        assert "\n" not in err
    assert sentinel.read_text() == "keep me" and not touched.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["random", "truncated", "hostile", "os_class"])
def test_bad_checkpoint_files_exit_2_with_one_line(trained, tmp_path, capsys, kind):
    _, video = trained
    files = write_bad_checkpoints(tmp_path / "bad", tmp_path / "pwned")
    ckpt = _run_with(trained, tmp_path / "run", ckpt_bytes=files[kind].read_bytes())
    assert main([str(ckpt), str(video), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smile-vis: error: ")
    assert_refused(err, ckpt)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_checkpoint_of_another_model_is_refused_in_one_line(trained, tmp_path, capsys):
    _, video = trained
    ckpt = _run_with(
        trained, tmp_path / "run", lambda cfg: OmegaConf.update(cfg, "model.encoder.name", "vit_small_patch16")
    )
    assert main([str(ckpt), str(video), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"smile-vis: error: {ckpt}: does not fit the model: missing ") and "other shapes" in err
    assert "\n" not in err
