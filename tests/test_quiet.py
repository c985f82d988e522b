"""Issue 13, item 10: noise and small frictions (targeted silencing, "did you mean", labelled strips, license)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from smile import quiet
from smile.build import CONFIG_DIR
from smile.callbacks.render import frame_strip
from smile.suggest import closest_keys, hydra_overrides, suggest_key, suggest_on_failure

ROOT = Path(__file__).resolve().parents[1]


class _Numbers(Dataset):
    def __len__(self) -> int:
        return 14

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((3,), float(i))


class _Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.lin(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def _trainer(tmp_path: Path, max_steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _resume_mid_epoch_warnings(tmp_path: Path, silence: bool) -> list[str]:
    """Messages of the warnings raised while resuming a plain DataLoader from a mid-epoch checkpoint."""
    loader = DataLoader(_Numbers(), batch_size=2)  # 7 batches: step 3 is mid-epoch
    first = _trainer(tmp_path, 3)
    first.fit(_Toy(), loader)
    ckpt = tmp_path / "mid.ckpt"
    first.save_checkpoint(ckpt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if silence:
            quiet.install()
        _trainer(tmp_path, 5).fit(_Toy(), loader, ckpt_path=str(ckpt))
    return [str(w.message) for w in caught]


def test_not_resumable_warning_is_silenced_and_only_it(tmp_path):
    loud = _resume_mid_epoch_warnings(tmp_path / "loud", silence=False)
    assert any("dataloader is not resumable" in m for m in loud)  # Lightning does say it here
    quiet_ = _resume_mid_epoch_warnings(tmp_path / "quiet", silence=True)
    assert not any("not resumable" in m for m in quiet_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.install()
        warnings.warn("another warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning"]


def test_litlogger_tip_is_not_printed(caplog):
    caplog.set_level(logging.INFO)
    quiet.install()
    quiet.install()  # idempotent: one filter, not two
    L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("litlogger" in m for m in messages)
    assert any("GPU available" in m for m in messages)  # Lightning's other notices still come through
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert sum(isinstance(f, quiet._DropMessage) for f in rank_zero.filters) == 1


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (["model.optimzer.lr=1"], "no key 'optimzer' in 'model'; did you mean 'optimizer'? (model.optimizer.lr=1)"),
        (["trainr.max_steps=3"], "no key 'trainr' at the top level; did you mean 'trainer'? (trainer.max_steps=3)"),
        (["data.masking.ratoi=0.5,0.7"], "did you mean 'ratio'? (data.masking.ratio=0.5,0.7)"),
        (["experiment=demo", "data.batch_sise=3"], "did you mean 'batch_size'? (data.batch_size=3)"),
    ],
)
def test_misspelled_key_gets_the_closest_one(overrides, hint):
    assert suggest_key(CONFIG_DIR, overrides).endswith(hint)


def test_no_suggestion_for_good_or_hopeless_overrides():
    assert suggest_key(CONFIG_DIR, ["model.optimizer.lr=1", "data.masking.ratio=0.5,0.75"]) is None
    assert suggest_key(CONFIG_DIR, ["zzzzzzzz=1"]) is None  # nothing close: no guess
    assert closest_keys("optimzer", ["optimizer", "scheduler", "encoder"]) == ["optimizer"]


def test_hint_follows_hydra_error_exit(capsys):
    argv = ["-m", "--config-name", "train", "model.optimzer.lr=1", "hydra/launcher=basic"]
    assert hydra_overrides(argv) == ["model.optimzer.lr=1", "hydra/launcher=basic"]
    with pytest.raises(SystemExit), suggest_on_failure(CONFIG_DIR, "train", argv):
        raise SystemExit(1)  # what @hydra.main does after printing "Key 'optimzer' is not in struct"
    assert "hint: no key 'optimzer' in 'model'; did you mean 'optimizer'?" in capsys.readouterr().err
    with pytest.raises(SystemExit), suggest_on_failure(CONFIG_DIR, "train", argv):
        raise SystemExit(0)  # success: nothing composed, nothing printed
    assert capsys.readouterr().err == ""


def test_strip_rows_are_labelled():
    panels = [torch.full((3, 2, 32, 8), 100, dtype=torch.uint8) for _ in range(3)]  # [3, T, H, W]
    plain = frame_strip(panels)
    named = frame_strip(panels, labels=["input", "masked", "prediction"])
    width = named.shape[1] - plain.shape[1]
    assert named.shape[0] == plain.shape[0] and width > 20  # a label column on the left
    assert torch.equal(named[:, width:], plain)  # the frames themselves are untouched
    for row in range(3):  # white text inside each row's band
        assert named[row * 32 : (row + 1) * 32, :width].max() > 200
    other = frame_strip(panels, labels=["input", "objects", "prediction"])
    assert torch.equal(other[:32], named[:32]) and not torch.equal(other[32:64], named[32:64])
    with pytest.raises(ValueError, match="2 labels for 3 panels"):
        frame_strip(panels, labels=["a", "b"])


def test_pyproject_license_builds_without_setuptools_warning():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught if "license" in str(w.message)] == []
    assert dist.metadata.license_expression == "Apache-2.0"
    assert {"slurm", "optuna"} <= set(dist.extras_require)
