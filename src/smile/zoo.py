"""Model zoo: the released VideoMAE and SMILE checkpoints, found in a local cache, never downloaded.

``model.init_from=zoo:<name>`` (and every ``smile-convert`` input) names a checkpoint of this
registry instead of a path; :func:`resolve` turns the name into the file in the cache directory
(argument, else ``$SMILE_ZOO_DIR``, else ``~/.cache/smile/zoo``). A missing file is an error that
says where to fetch it and the exact path to save it under; when a sha256 is recorded the file is
verified. A cached file that is visibly broken (empty, truncated, not a torch file) is refused with
the URL to fetch it again. Nothing is fetched over the network, ever.

Sources. SPEC §4.4 names the two released SMILE pretraining files on the Hugging Face repository
``fmthoker/SMILE``; the finetuned SMILE files and the URLs are those of the SMILE README
(https://github.com/fmthoker/SMILE). The VideoMAE entries are the Google Drive links of
https://github.com/MCG-NJU/VideoMAE/blob/main/MODEL_ZOO.md; Drive serves them under its own
names, so ``filename`` is the name to save them as here. No sha256 is published for any of them,
so every ``sha256`` is None (not verified) until someone records one from a trusted download.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from smile.models.checkpoint_file import CheckpointError, file_problem

PREFIX = "zoo:"
ENV_DIR = "SMILE_ZOO_DIR"
DEFAULT_DIR = Path("~/.cache/smile/zoo")
SMILE_HF = "https://huggingface.co/fmthoker/SMILE/resolve/main/SMILE_MODELS"
PRETRAIN_KEYS = ("mask_token", "encoder.patch_embed.proj.weight", "encoder_to_decoder.weight")
FINETUNE_KEYS = ("patch_embed.proj.weight", "fc_norm.weight", "head.weight")


@dataclass(frozen=True)
class ZooEntry:
    """One released checkpoint.

    Attributes:
        name: Registry name (``zoo:<name>``).
        filename: File name inside the cache directory.
        url: Where to download it by hand.
        model: Model size of ``smile.models.list_models()``.
        kind: ``"pretrain"`` (student, SPEC §4.3 first listing) or ``"finetune"`` (classifier).
        num_classes: Classifier outputs (0 for pretraining files).
        target_dim: Decoder output width of a pretraining file (1536 pixels, 768 CLIP features).
        num_frames: Clip length the model was trained on.
        img_size: Frame size the model was trained on.
        sample_keys: Keys the state dict (under ``model``/``module``) must contain.
        sha256: Hex digest of the file, or None when unknown (then not verified).
    """

    name: str
    filename: str
    url: str
    model: str
    kind: Literal["pretrain", "finetune"]
    num_classes: int = 0
    target_dim: int = 0
    num_frames: int = 16
    img_size: int = 224
    sample_keys: tuple[str, ...] = ()
    sha256: str | None = None


def _smile(epochs: int, finetuned_on: str = "") -> ZooEntry:
    """A SMILE ViT-B K400 file: ``epochs`` = stage 1 + stage 2 (600 = 300 + 300, 1200 = 800 + 400)."""
    stages = {600: "first_stage_300_epochs_2nd_stage_300_epochs", 1200: "first_stage_800_epochs_2nd_stage_400_epochs"}
    name = f"smile_vitb_k400_{epochs}e" + (f"_ft_{finetuned_on}" if finetuned_on else "")
    if not finetuned_on:  # SMILE regresses CLIP ViT-B/16 features: 768-wide decoder head
        path = f"pretrain/k400_pretraining_{stages[epochs]}.pth"
        return ZooEntry(name, path.rsplit("/", 1)[1], f"{SMILE_HF}/{path}", "vit_base_patch16", "pretrain", 0, 768,
                        sample_keys=PRETRAIN_KEYS)  # fmt: skip
    folder = f"finetune/{finetuned_on}/VIT_B_{epochs}_EPOCHS"
    filename = f"{finetuned_on}_finetuned_after_k400_pretraining_{stages[epochs]}.pth"
    classes = {"k400": 400, "ssv2": 174}[finetuned_on]
    return ZooEntry(name, filename, f"{SMILE_HF}/{folder}/{filename}", "vit_base_patch16", "finetune", classes,
                    sample_keys=FINETUNE_KEYS)  # fmt: skip


def _videomae(name: str, drive_id: str, model: str, num_classes: int = 0) -> ZooEntry:
    """A VideoMAE file on Google Drive (pixel targets: 1536-wide decoder head), saved as ``<name>.pth``."""
    url = f"https://drive.google.com/file/d/{drive_id}/view?usp=sharing"
    if num_classes:
        return ZooEntry(name, f"{name}.pth", url, model, "finetune", num_classes, sample_keys=FINETUNE_KEYS)
    return ZooEntry(name, f"{name}.pth", url, model, "pretrain", 0, 1536, sample_keys=PRETRAIN_KEYS)


_B, _L = "vit_base_patch16", "vit_large_patch16"
ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        _smile(600),
        _smile(1200),
        _smile(600, "k400"),
        _smile(1200, "k400"),
        _smile(600, "ssv2"),
        _smile(1200, "ssv2"),
        _videomae("videomae_vitb_k400_800e", "1JfrhN144Hdg7we213H1WxwR3lGYOlmIn", _B),
        _videomae("videomae_vitb_k400_800e_ft_k400", "18EEgdXY9347yK3Yb28O-GxFMbk41F6Ne", _B, 400),
        _videomae("videomae_vitb_k400_1600e", "1tEhLyskjb755TJ65ptsrafUG2llSwQE1", _B),
        _videomae("videomae_vitb_k400_1600e_ft_k400", "1MzwteHH-1yuMnFb8vRBQDvngV1Zl-d3z", _B, 400),
        _videomae("videomae_vitl_k400_1600e", "1qLOXWb_MGEvaI7tvuAe94CV7S2HXRwT3", _L),
        _videomae("videomae_vitl_k400_1600e_ft_k400", "1jX1CiqxSkCfc94y8FRW1YGHy-GNvHCuD", _L, 400),
        _videomae("videomae_vitb_ssv2_800e", "181hLvyrrPW2IOGA46fkxdJk0tNLIgdB2", _B),
        _videomae("videomae_vitb_ssv2_800e_ft_ssv2", "1xZCiaPF4w7lYmLt5o1D5tIZyDdLtJAvH", _B, 174),
        _videomae("videomae_vitb_ssv2_2400e", "1I18dY_7rSalGL8fPWV82c0-foRUDzJJk", _B),
        _videomae("videomae_vitb_ssv2_2400e_ft_ssv2", "1dt_59tBIyzdZd5Ecr22lTtzs_64MOZkT", _B, 174),
    )
}


def is_zoo(spec: object) -> bool:
    """Whether ``spec`` names a zoo checkpoint (``zoo:<name>``) rather than a path."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def zoo_dir(cache_dir: str | Path | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$SMILE_ZOO_DIR``, else ``~/.cache/smile/zoo``."""
    chosen = cache_dir or os.environ.get(ENV_DIR) or DEFAULT_DIR
    return Path(chosen).expanduser()


def get_entry(spec: str) -> ZooEntry:
    """The registry entry of ``zoo:<name>`` (or a bare name).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    name = spec.removeprefix(PREFIX)
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; known names: {', '.join(sorted(ZOO))}")
    return ZOO[name]


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (checkpoints are ~1 GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve(spec: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The local file of ``zoo:<name>``; any other value is returned as a path, untouched.

    Args:
        spec: ``zoo:<name>`` or a checkpoint path.
        cache_dir: Cache directory (else ``$SMILE_ZOO_DIR``, else ``~/.cache/smile/zoo``).

    Raises:
        ValueError: unknown name (lists the names), or a sha256 mismatch (names both digests).
        CheckpointError: the cached file is empty, truncated or not a torch file (gives the URL).
        FileNotFoundError: the file is not in the cache (gives the URL and the path to save it as).
    """
    if not is_zoo(spec):
        return Path(spec)
    entry = get_entry(str(spec))
    path = zoo_dir(cache_dir) / entry.filename
    if not path.is_file():
        raise FileNotFoundError(
            f"zoo:{entry.name} is not in the local cache and is never downloaded automatically. "
            f"Download it from {entry.url} and save it as {path} "
            f"(or set ${ENV_DIR} / paths.zoo_dir to the directory that holds {entry.filename})."
        )
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(
            f"zoo:{entry.name}: {path}: {problem}; expected the checkpoint from {entry.url}: download it again "
            f"and save it as {path}"
        )
    if entry.sha256 is not None:
        actual = sha256_of(path)
        if actual != entry.sha256.lower():
            raise ValueError(f"{path}: sha256 {actual} does not match zoo:{entry.name}'s expected {entry.sha256}")
    return path


def missing_sample_keys(entry: ZooEntry, keys: set[str]) -> list[str]:
    """The entry's ``sample_keys`` absent from a loaded state dict's ``keys`` (empty = looks right)."""
    return [k for k in entry.sample_keys if k not in keys]
