"""Run directories: short, safe to paste, deterministic, and holding the command that made them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from smile_testing import TINY

from smile.run_dir import MAX_NAME, command_line, run_dir_name
from smile.train import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
SAFE = re.compile(r"[A-Za-z0-9._-]+")
LIST_FILE = "/very/long/path/to/a/dataset/folder/with/many/levels/annotations/splits/train.csv"
# 13 ordinary overrides (the command that used to fail with "File name too long"), one a path.
THIRTEEN = [
    "data=list",
    f"data.train_dataset.list_file={LIST_FILE}",
    "data.batch_size=4",
    "data.masking.ratio=0.75",
    "data.masking.masks_per_clip=2",
    "model.optimizer.lr=3e-4",
    "model.optimizer.weight_decay=0.05",
    "model.scheduler.warmup_steps=100",
    "model.scheduler.min_lr=1e-6",
    "model.encoder.drop_path=0.1",
    "model/encoder=vit_small",
    "trainer=gpu",
    "seed=7",
]


def run_dir(overrides: list[str], root: Path) -> Path:
    """``hydra.run.dir`` of ``python train.py <overrides>`` with ``SMILE_OUTPUT_ROOT=root``."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    assert Path(cfg.paths.root) == root
    return Path(cfg.hydra.run.dir)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SMILE_OUTPUT_ROOT", str(tmp_path))
    return tmp_path


def test_thirteen_overrides_give_one_short_safe_component(root):
    path = run_dir(THIRTEEN, root)
    assert path.parent == root / "default"  # one component under <root>/<name>: the path is not nested
    name = path.name
    assert SAFE.fullmatch(name) and len(name.encode()) <= MAX_NAME <= 255, name
    assert "very" not in name and "train.csv" not in name  # a path value shows as a hash
    assert re.search(r"_list_file-[0-9a-f]{6}_", name) and re.search(r"_[0-9a-f]{8}$", name)  # capped, hash kept


def test_same_overrides_same_directory_different_overrides_another(root):
    first = run_dir(THIRTEEN, root)
    assert run_dir(list(reversed(THIRTEEN)), root) == first  # order does not matter
    assert run_dir([*THIRTEEN, "trainer.max_steps=20", "resume=false", "data.num_workers=2"], root) == first
    assert run_dir([*THIRTEEN[:-1], "seed=8"], root) != first
    assert run_dir([*THIRTEEN[:1], THIRTEEN[1].replace("train.csv", "val.csv"), *THIRTEEN[2:]], root) != first


def test_names_are_readable():
    assert run_dir_name([]) == ""
    assert run_dir_name(["trainer=gpu", "seed=1"]) == "seed-1_trainer-gpu"  # exact: no hash needed
    name = run_dir_name(["data.masking.ratio=0.5", "debug=fast", "~callbacks.media"])
    assert re.fullmatch(r"ratio-0\.5_debug-fast_media-del_[0-9a-f]{8}", name), name  # sorted like Hydra's
    assert re.fullmatch(r"betas-[0-9a-f]{6}_[0-9a-f]{8}", run_dir_name(["model.optimizer.betas=[0.9,0.95]"]))
    assert run_dir_name(["seed=1", "name=x"], exclude_keys=["name"]) == "seed-1"
    # a value with separators in it never reads like two overrides
    assert run_dir_name(["a=b_c-d"]) != run_dir_name(["a=b", "c=d"])


def test_command_line_pastes_into_a_shell():
    assert command_line(["train.py", "seed=1", "logger=[csv,wandb]"]) == "python train.py seed=1 'logger=[csv,wandb]'"
    assert command_line(["/venv/bin/smile-train", "seed=1"]) == "/venv/bin/smile-train seed=1"


def test_printed_checkpoint_path_pastes_into_init_from_and_command_is_saved(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path)}
    args = [*TINY, "debug=fast", "trainer.max_steps=2", "data.masking.ratio=0.5", "model.optimizer.lr=1e-3"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = re.search(r"^checkpoint:\s+(\S+)", done.stdout, re.M)
    assert printed, done.stdout[-2000:]
    ckpt = Path(printed.group(1))
    assert ckpt.is_file() and all(SAFE.fullmatch(part) for part in ckpt.relative_to(tmp_path).parts)
    command = (ckpt.parents[1] / "command.txt").read_text().splitlines()
    assert command[0].startswith("# ") and command[1] == command_line([str(ROOT / "train.py"), *args])
    # pasted unquoted into a new run: Hydra's grammar takes it and the value is the file
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=classifier", f"model.init_from={ckpt}"])
    assert Path(cfg.model.init_from) == ckpt
