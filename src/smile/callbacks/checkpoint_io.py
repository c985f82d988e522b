"""Checkpoint files that are never half-written, and the check a resume runs before trusting one.

Lightning's own save (``_atomic_save``) stages the file in ``$TMPDIR`` and moves it into place; when
the run directory is on another filesystem (local ``/tmp``, shared output: the usual cluster
layout) that move is a copy, and a kill or a full disk during it leaves a truncated file under the
final name. Here the temporary file sits next to its destination (``.<name>.tmp-<pid>``), is
flushed and fsync'ed, then renamed with ``os.replace``, which is atomic within one filesystem on
POSIX; a failed write removes it, and a killed writer's leftovers are removed when the next run
starts (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

log = logging.getLogger(__name__)

TEMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)$")  # `.<name>.tmp-<pid>`, see temp_path
# What a Lightning training checkpoint holds, as opposed to a weights-only file.
REQUIRED_KEYS = ("state_dict", "global_step")
TRAINING_STATE_KEYS = ("loops", "optimizer_states")


class UnusableCheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from: truncated, unreadable or not a training checkpoint."""


class CheckpointNotFoundError(FileNotFoundError):
    """An explicitly named checkpoint file that does not exist."""


def temp_path(path: str | Path) -> Path:
    """Where ``path`` is staged: its own directory, so the final rename never crosses filesystems."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; some filesystems refuse fsync on a directory: ignored."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` that leaves either the previous file or the complete new one under ``path``.

    Raises:
        OSError: the write failed (the message names the file; a full disk says so); ``path`` is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if _disk_full(err):
            raise OSError(
                errno.ENOSPC,
                f"checkpoint {path} not written: no space left on its filesystem; the previous file under "
                "that name is unchanged. Free space, or point callbacks.checkpoint.dirpath elsewhere",
            ) from err
        raise
    _fsync_directory(path.parent)


def _disk_full(err: BaseException | None) -> bool:
    """Whether ENOSPC is behind ``err``: torch's zip writer turns it into a RuntimeError on close."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` whose local saves go through :func:`atomic_save`.

    Given to the Trainer as a plugin (``trainer.plugins`` in ``configs/trainer/cpu.yaml``, inherited
    by every trainer config), so periodic, last, requeue and manual saves all take this path, under
    DDP and FSDP (full state dict) alike. Remote URLs (``s3://``...) keep Lightning's fsspec save.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (see the module docstring for why)."""
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the ``.<name>.tmp-<pid>`` files of writers that are gone (killed mid-save); returns them.

    A file whose writer still runs on this host is left alone. This process's own files are stale by
    definition: a save in progress removes its file on failure, so one that is left was interrupted.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        match = TEMP_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _pid_alive(pid):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        log.warning("removed %d partial checkpoint file(s) of killed saves: %s", len(removed), removed)
    return removed


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    line = text[0].split(". ")[0] if text else type(err).__name__  # torch appends paragraphs of advice
    return line if len(line) <= limit else line[: limit - 1] + "…"


def checked_global_step(path: str | Path) -> int:
    """The global step of a resumable training checkpoint; reads it the way a resume does.

    ``torch.load(weights_only=True)``, as Lightning's resume does with this torch, memory-mapped so
    a large file is not read twice; a truncated zip fails here because its directory is at the end.

    Raises:
        UnusableCheckpointError: why the file cannot be resumed from (the message omits the path).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise UnusableCheckpointError(f"cannot be opened ({err.strerror})") from err
    if size == 0:
        raise UnusableCheckpointError("is empty (0 bytes)")
    is_zip = zipfile.is_zipfile(path)  # a torch file is a zip archive; a truncated one has lost its directory
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a bad file
        reason = _first_line(err) if is_zip else "not a complete zip archive: truncated, or not a torch file"
        raise UnusableCheckpointError(f"cannot be read ({size} bytes: {reason})") from err
    if not isinstance(obj, dict):
        raise UnusableCheckpointError(f"holds a {type(obj).__name__}, not a Lightning training checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in obj]
    if not any(key in obj for key in TRAINING_STATE_KEYS):
        missing.append(" or ".join(TRAINING_STATE_KEYS))
    if missing:
        raise UnusableCheckpointError(f"is not a training checkpoint (no {', '.join(missing)})")
    return int(obj["global_step"])
