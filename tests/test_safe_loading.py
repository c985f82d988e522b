"""Nothing read from a folder runs code, and every unusable checkpoint file gets one line naming it.

``write_bad_checkpoints`` is shared with the CLI, model, zoo and teacher tests: a random file, a real
checkpoint cut to half its size, and two hostile pickles (a ``__reduce__`` calling ``os.system``,
and a class of ``os``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from smile_testing import TINY, compose_cfg

from smile.models.checkpoint import CheckpointError, read_checkpoint, read_state_dict
from smile.safe_config import UnsafeConfigError, check_targets

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "configs" / "experiment").glob("*.yaml"))


class _Hostile:
    """Unpickling it would run ``touch <sentinel>``."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.sentinel}",)


def write_bad_checkpoints(folder: Path, sentinel: Path) -> dict[str, Path]:
    """``{kind: path}`` of checkpoint files no loader may accept (unpickling ``hostile`` creates ``sentinel``)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.ckpt"
    torch.save({"state_dict": {f"net.w{i}": torch.randn(64, 64) for i in range(4)}}, good)
    files = {k: folder / f"{k}.ckpt" for k in ("random", "truncated", "hostile", "os_class")}
    files["random"].write_bytes(
        torch.randint(0, 256, (8192,), generator=torch.Generator().manual_seed(0)).byte().numpy().tobytes()
    )
    data = good.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Hostile(sentinel)}, files["hostile"])
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": os.stat_result((0,) * 10)}, files["os_class"])
    good.unlink()
    return files


def assert_refused(message: str, path: Path) -> None:
    """Our one-line message: names the file, never torch's advice to load unsafely."""
    assert str(path) in message, message
    assert "weights_only" not in message and "\n" not in message, message


@pytest.fixture
def bad_files(tmp_path) -> tuple[dict[str, Path], Path]:
    sentinel = tmp_path / "pwned"
    return write_bad_checkpoints(tmp_path / "bad", sentinel), sentinel


# -- read_checkpoint ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, words",
    [
        ("random", "not a PyTorch checkpoint"),
        ("truncated", "truncated or corrupted zip archive"),
        ("hostile", "`posix.system`"),
        ("os_class", "`os.stat_result`"),
    ],
)
def test_bad_files_get_one_line_naming_the_file(bad_files, kind, words):
    files, sentinel = bad_files
    for read in (read_checkpoint, read_state_dict):
        with pytest.raises(CheckpointError) as err:
            read(files[kind])
        assert_refused(str(err.value), files[kind])
        assert words in str(err.value) and "expected a file written by torch.save" in str(err.value)
    assert not sentinel.exists()


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_empty_file_directory_plain_pickle_and_torchscript(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pth: the file is empty"):
        read_checkpoint(empty)
    with pytest.raises(CheckpointError, match="is a directory"):
        read_checkpoint(tmp_path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"w": [1.0]}))  # pickle.dump, not torch.save
    with pytest.raises(CheckpointError, match="plain.pkl: not a PyTorch checkpoint"):
        read_checkpoint(plain)
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    with pytest.raises(CheckpointError, match="scripted.pt: a TorchScript archive"):
        read_checkpoint(scripted)


# -- check_targets -----------------------------------------------------------------------------
def test_every_shipped_experiment_passes_the_allow_list(tmp_path):
    """The allow-list covers what the project's own configs build (saved and reloaded like .hydra/)."""
    path = tmp_path / "config.yaml"
    for name in ["default", *EXPERIMENTS]:
        overrides = [] if name == "default" else [f"experiment={name}"]
        OmegaConf.save(compose_cfg([*overrides, "logger=[csv,tensorboard,wandb]"], tmp_path), path)
        check_targets(OmegaConf.load(path), path)
    for extra in (["debug=profile"], ["trainer=fsdp"], ["trainer=slurm"]):
        OmegaConf.save(compose_cfg([*TINY, *extra], tmp_path), path)
        check_targets(OmegaConf.load(path), path)


HOSTILE = [
    ("model.encoder._target_", {"model": {"encoder": {"_target_": "builtins.open", "file": "x", "mode": "w"}}}),
    ("logger.csv._target_", {"logger": {"csv": {"_target_": "os.system", "_args_": ["true"]}}}),
    ("model._target_", {"model": {"_target_": "smile.cli.convert.os.system"}}),  # os through a smile module
    ("model._target_", {"model": {"_target_": "smile.build.instantiate"}}),  # hydra's, re-exported
    ("model._target_", {"model": {"_target_": "smile.lit.PretrainLitModule.load_from_checkpoint"}}),
    ("plugins.0.path", {"plugins": [{"_target_": "hydra.utils.get_method", "path": "os.system"}]}),
    ("a._target_", {"a": {"_target_": "${b}"}, "b": "os.system"}),
    ("a.b._target_", {"a": {"b": "${oc.create:'{_target_: subprocess.run}'}"}}),
]


@pytest.mark.parametrize("key, raw", HOSTILE, ids=[f"{i}" for i in range(len(HOSTILE))])
def test_hostile_targets_are_refused_by_key(tmp_path, key, raw):
    path = tmp_path / ".hydra" / "config.yaml"
    with pytest.raises(UnsafeConfigError) as err:
        check_targets(OmegaConf.create(raw), path)
    message = str(err.value)
    assert message.startswith(f"{path}: `{key}") and "nothing was built" in message, message


# -- eval.py ckpt ------------------------------------------------------------------------------
def test_eval_refuses_bad_ckpt_with_exit_code_2(bad_files, tmp_path, capsys):
    from smile.eval import main

    files, sentinel = bad_files
    overrides = ["experiment=finetune_synthetic", *TINY, "data.test_dataset.num_samples=4"]
    for kind in ("random", "truncated", "hostile"):
        cfg = compose_cfg([*overrides, f"ckpt={files[kind]}"], tmp_path / kind, config_name="eval")
        with pytest.raises(SystemExit) as exit_info:
            main.__wrapped__(cfg)  # the function under @hydra.main
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("smile-eval: error: ") and err.count("\n") == 0
        assert_refused(err, files[kind])
    assert not sentinel.exists()
