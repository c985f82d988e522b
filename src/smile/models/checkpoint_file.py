"""Reading a checkpoint file: weights only, and one line naming the file when it cannot be read.

Every loader of the project (``model.init_from``, ``ckpt`` of ``eval.py``, ``smile-vis``,
``smile-convert``, ``zoo:`` names, a resume candidate) reads through :func:`read_checkpoint`, so
a random file, a truncated download or a pickle that names a disallowed global gets the same
answer: a :class:`CheckpointError` that says which file, what is wrong with it and what was
expected. torch's own errors are not passed on: they advise retrying with the unsafe loader,
which would run whatever code the file names.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

__all__ = ["EXPECTED", "SAFE_GLOBALS", "CheckpointError", "file_problem", "read_checkpoint"]

# Objects the official VideoMAE/SMILE .pth files pickle next to the weights (the training args);
# torch.load(weights_only=True) accepts exactly these, never arbitrary classes.
SAFE_GLOBALS: list[Any] = [argparse.Namespace]

EXPECTED = "expected a file written by torch.save (a Lightning .ckpt, an official .pth or a state dict)"

# The first bytes of the two formats torch.save writes: a zip archive, or the legacy pickle stream.
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0a"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, refused, or not fitting the model."""


def file_problem(path: Path) -> str | None:
    """What is visibly wrong with the bytes of ``path`` before unpickling it, or None.

    Cheap (reads the first bytes and, for a zip, its directory), so the zoo can check a cached
    file before a 1 GB load.
    """
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    with path.open("rb") as f:
        head = f.read(4)
    if head == ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            return (
                f"truncated or corrupted zip archive ({size} bytes, the archive's directory at its end is "
                "missing: an interrupted save, copy or download)"
            )
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith("/constants.pkl") for n in names):
            return "a TorchScript archive (torch.jit.save), not a file of weights"
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "a zip archive without data.pkl (not written by torch.save)"
        return None
    if head == LEGACY_MAGIC:
        return None
    return (
        f"not a PyTorch checkpoint (starts with bytes {head.hex()}, neither a torch.save zip nor a legacy torch file)"
    )


def _describe(err: BaseException) -> str:
    """Our words for an error torch.load raised; never torch's advice to load unsafely."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"refused: the file pickles `{found.group(1)}`, which is not a tensor, a container, a number or "
            "argparse.Namespace (weights are read without running code from the file)"
        )
    if isinstance(err, EOFError):
        return "the file ends too early (truncated)"
    detail = re.search(r"WeightsUnpickler error: \s*(.+?)\s*(?:\n|$)", text)
    if detail:
        return f"unreadable pickle data ({detail.group(1).strip()})"
    first = text.split(". ", 1)[0].splitlines()[0] if text.strip() else type(err).__name__
    if "weights_only" in first:
        first = type(err).__name__
    return f"unreadable ({first})"


def read_checkpoint(path: str | Path) -> object:
    """The whole object a checkpoint file holds (weights, and hyper-parameters or args beside them).

    Raises:
        FileNotFoundError: with the path, when the file does not exist.
        CheckpointError: with the path, the problem and what was expected, when it cannot be read.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; {EXPECTED}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (check the path, e.g. model.init_from)")
    try:
        problem = file_problem(path)
        if problem is None:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        problem = f"cannot be read ({err.strerror or err})"
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError) as err:
        log.debug("torch.load(%s) failed", path, exc_info=True)
        problem = _describe(err)
    raise CheckpointError(f"{path}: {problem}; {EXPECTED}")
