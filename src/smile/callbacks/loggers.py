"""Logger helpers shared by training, evaluation and the media callback.

W&B run names and sweep groups, the fall-back to offline when the W&B host cannot be reached, the
git commit next to the config, the ``wandb sync`` hint of an offline run, and images / animations /
per-class accuracy sent to whichever loggers take them (W&B, TensorBoard); loggers without media
(CSV) get the files on disk only.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
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
    directory: ``name`` plus the name of its run directory (``name/lr-0.1_seed-1``).
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


def wandb_host() -> tuple[str, int]:
    """(host, port) of the W&B server: ``WANDB_BASE_URL`` (self-hosted) or the public api.wandb.ai."""
    url = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def wandb_reachable(timeout: float) -> bool:
    """Whether a TCP connection to the W&B host opens within ``timeout`` seconds.

    The connection (name lookup included, which ``socket.create_connection``'s own timeout does not
    bound) runs in a daemon thread, so a host behind a dropping firewall or a hung DNS costs at most
    ``timeout`` seconds instead of wandb's own minutes of retries.
    """
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(wandb_host(), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, name="wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


class FallbackWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` that runs offline, with a warning, when it cannot reach W&B.

    With ``offline: false`` and no network, wandb stalls for about two minutes before it gives up;
    this checks the host first (:func:`wandb_reachable`) and falls back to an offline run whose
    ``wandb sync`` command the end of the run prints. ``log_model`` is turned off with it (offline
    runs cannot upload checkpoints). ``WANDB_MODE=offline|disabled`` skips the check: wandb obeys it.

    Args:
        connect_timeout: seconds to wait for the W&B host (``logger.wandb.connect_timeout``).
        offline: ``logger.wandb.offline``; see ``WandbLogger`` for the other arguments.
    """

    def __init__(self, *, connect_timeout: float, offline: bool = False, **kwargs: Any) -> None:
        mode = os.environ.get("WANDB_MODE", "")
        if not offline and mode not in ("offline", "dryrun", "disabled") and not wandb_reachable(connect_timeout):
            _warn_offline(connect_timeout)
            offline, kwargs["log_model"] = True, False
        super().__init__(offline=offline, **kwargs)


@rank_zero_only
def _warn_offline(timeout: float) -> None:
    """One warning (rank 0 only) that names the key, the host and what the run does instead."""
    host, port = wandb_host()
    log.warning(
        "logger.wandb.offline=false but the W&B host %s:%d did not answer within %gs "
        "(logger.wandb.connect_timeout): logging offline instead; upload later with the printed `wandb sync` command",
        host,
        port,
        timeout,
    )


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


def log_confusion(
    loggers: Sequence[Logger],
    matrix: Tensor,
    image: Tensor,
    prefix: str = "test",
    class_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Per-class accuracy keyed by class name, a per-class table and the confusion-matrix image to the loggers.

    Metrics are ``{prefix}/class_acc/<name>`` (``/`` in a name becomes ``_``, so that it does not
    nest; ``class_<i>`` when ``class_names`` is None). W&B also gets a ``{prefix}/per_class`` table
    and TensorBoard the same as a markdown text: name, videos, correct, accuracy. Returns the metrics.
    """
    k = matrix.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [f"class_{i}" for i in range(k)]
    m = matrix.double()
    support, correct = m.sum(1), m.diagonal()
    recall = (correct / support.clamp_min(1)).tolist()  # [K]
    metrics = {f"{prefix}/class_acc/{n.replace('/', '_')}": float(v) for n, v in zip(names, recall, strict=True)}
    rows = [[n, int(s), int(c), float(r)] for n, s, c, r in zip(names, support, correct, recall, strict=True)]
    for lg in loggers:
        lg.log_metrics(metrics, step=0)
        if isinstance(lg, WandbLogger):
            lg.log_table(key=f"{prefix}/per_class", columns=list(TABLE_COLUMNS), data=rows, step=0)
        elif isinstance(lg, TensorBoardLogger):
            lg.experiment.add_text(f"{prefix}/per_class", _markdown_table(rows), global_step=0)
        lg.save()
    log_images(loggers, {f"{prefix}/confusion_matrix": image}, step=0)
    return metrics


TABLE_COLUMNS = ("class", "videos", "correct", "accuracy")


def _markdown_table(rows: list[list[Any]]) -> str:
    """Per-class rows as a markdown table (TensorBoard's text plugin renders it)."""
    head = "| " + " | ".join(TABLE_COLUMNS) + " |\n|" + "---|" * len(TABLE_COLUMNS) + "\n"
    return head + "".join(f"| {n} | {s} | {c} | {r:.4f} |\n" for n, s, c, r in rows)
