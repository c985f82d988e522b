"""Logger helpers shared by training, evaluation and the media callback.

W&B run names and sweep groups, the git commit next to the config, the ``wandb sync`` hint of an
offline run, and images / animations / per-class accuracy sent to whichever loggers take them
(W&B, TensorBoard); loggers without media (CSV) get the files on disk only.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from torch import Tensor

log = logging.getLogger(__name__)


def git_metadata(path: str | Path | None = None) -> dict[str, Any]:
    """``{"git_commit": sha, "git_dirty": bool}`` of the repository holding ``path`` (default: this
    package's source); ``{}`` outside a git checkout or without git."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status)}


def wandb_run_names(
    name: str, overrides: str = "", sweep_dir: str | None = None, root: str | None = None
) -> tuple[str, str]:
    """``(group, run name)`` of a W&B run.

    A single run is grouped by the experiment ``name``; every job of a multirun (``-m``) sweep is
    grouped by the sweep directory (relative to the output ``root`` when under it, e.g.
    ``multirun/demo``, else its last part), so one sweep is one group. The run is named like its
    directory: ``name`` plus the overrides that distinguish it (``name/lr=0.1,seed=1``).
    """
    run_name = f"{name}/{overrides}" if overrides else name
    if sweep_dir is None:
        return name, run_name
    sweep = Path(sweep_dir)
    try:
        group = sweep.resolve().relative_to(Path(root).resolve()).as_posix() if root else sweep.name
    except ValueError:
        group = sweep.name
    return group or name, run_name


def wandb_loggers(loggers: Iterable[Logger]) -> list[WandbLogger]:
    """The W&B loggers among ``loggers``."""
    return [lg for lg in loggers if isinstance(lg, WandbLogger)]


def wandb_sync_command(logger: WandbLogger) -> str | None:
    """``wandb sync <run dir>`` for an offline run that has started, else None."""
    run = logger._experiment  # None until something was logged: then there is nothing to sync
    settings = getattr(run, "settings", None)
    if settings is None or not getattr(run, "offline", False):
        return None
    return f"wandb sync {Path(settings.sync_dir).resolve()}"


def finish_wandb(loggers: Iterable[Logger], exit_code: int = 0) -> list[str]:
    """Close the W&B runs of ``loggers`` (the next run in this process, e.g. the next multirun
    job, starts a new one) and print how to upload offline runs; returns the sync commands."""
    commands = []
    for lg in wandb_loggers(loggers):
        if lg._experiment is None or not hasattr(lg._experiment, "finish"):
            continue
        cmd = wandb_sync_command(lg)
        lg._experiment.finish(exit_code=exit_code)
        lg._experiment = None
        if cmd:
            commands.append(cmd)
            print(f"W&B offline run; upload it with:  {cmd}", flush=True)
    return commands


def log_images(loggers: Sequence[Logger], images: dict[str, Tensor], step: int) -> None:
    """uint8 ``[H, W, 3]`` images to every logger that takes images (W&B, TensorBoard)."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            for key, image in images.items():
                lg.log_image(key=key, images=[image.numpy()], step=step)
        elif isinstance(lg, TensorBoardLogger):
            for key, image in images.items():
                lg.experiment.add_image(key, image.numpy(), global_step=step, dataformats="HWC")


def log_animations(loggers: Sequence[Logger], files: dict[str, Path], step: int, fps: float) -> None:
    """GIF/MP4 files to W&B (TensorBoard needs moviepy for video: it gets the strips only)."""
    for lg in wandb_loggers(loggers):
        for key, path in files.items():
            lg.log_video(key=key, videos=[str(path)], step=step, fps=[fps], format=[path.suffix.lstrip(".")])


def log_confusion(loggers: Sequence[Logger], matrix: Tensor, image: Tensor, prefix: str = "test") -> None:
    """Per-class accuracy (``{prefix}/class_acc/<k>``) and the confusion-matrix image to the loggers."""
    if not loggers:
        return
    m = matrix.double()
    recall = (m.diagonal() / m.sum(1).clamp_min(1)).tolist()  # [K]
    metrics = {f"{prefix}/class_acc/{k:03d}": float(v) for k, v in enumerate(recall)}
    for lg in loggers:
        lg.log_metrics(metrics, step=0)
        lg.save()
    log_images(loggers, {f"{prefix}/confusion_matrix": image}, step=0)
