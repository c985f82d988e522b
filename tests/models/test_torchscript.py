"""TorchScript archives (OpenAI's CLIP ``ViT-B-16.pt``) are read as weights, never run.

``read_torchscript_state_dict`` must give what ``torch.jit.load(path).state_dict()`` gives, while
``torch.jit.load`` itself (which compiles and runs the archive's code) is made to fail.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from smile.models.checkpoint import CheckpointError
from smile.models.torchscript import read_torchscript_state_dict
from smile.teachers import CLIPArch, CLIPTeacher

TINY = CLIPArch(width=64, layers=2, heads=2, patch_size=16, image_size=32)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def _refuse_jit_load(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load runs the archive's code; it must not be called")

    monkeypatch.setattr(torch.jit, "load", refuse)


class _Scripted(nn.Module):
    """Parameters, buffers (one non-persistent: TorchScript saves it), a plain tensor, a typed list, fp16."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.randn(3))
        self.register_buffer("stats", torch.arange(4.0))
        self.register_buffer("scratch", torch.ones(2), persistent=False)
        self.mask = torch.zeros(2)  # an attribute, not state: jit.load's state_dict leaves it out
        self.sizes = torch.jit.Attribute([1, 2], list[int])
        self.attn = nn.MultiheadAttention(4, 2)
        self.seq = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x) * self.scale.sum() + self.mask.sum()


def test_scripted_archive_state_equals_torch_jit_load(tmp_path, monkeypatch):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(_Scripted().half()), str(path))
    expected = torch.jit.load(str(path)).state_dict()
    _refuse_jit_load(monkeypatch)
    got = read_torchscript_state_dict(path)
    assert list(got) == list(expected) and "mask" not in got and "scratch" in got
    assert all(torch.equal(got[k], v) and got[k].dtype == torch.float16 for k, v in expected.items())


def _replace_member(src: Path, dst: Path, suffix: str, data: bytes) -> None:
    """A copy of the archive ``src`` whose member ending in ``suffix`` holds ``data``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename.endswith(suffix) else zin.read(item.filename))


class _Hostile:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.sentinel}",)


def test_hostile_or_damaged_archive_is_refused_naming_the_file(tmp_path, monkeypatch):
    source = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(_Scripted()), str(source))
    _refuse_jit_load(monkeypatch)
    sentinel = tmp_path / "pwned"
    hostile, damaged = tmp_path / "hostile.pt", tmp_path / "damaged.pt"
    _replace_member(source, hostile, "/data.pkl", pickle.dumps({"x": _Hostile(sentinel)}, protocol=2))
    _replace_member(source, damaged, "/data/0", b"\x00" * 3)  # a storage cut short
    for path, words in ((hostile, "posix.system is not allowed"), (damaged, "holds 3 bytes")):
        for read in (read_torchscript_state_dict, lambda p: CLIPTeacher.from_file(p, arch=TINY)):
            with pytest.raises(CheckpointError) as err:
                read(path)
        message = str(err.value)
        assert message.startswith(f"{path}: TorchScript archive refused or unreadable") and words in message
        assert "without running the archive's code" in message
    assert not sentinel.exists()
