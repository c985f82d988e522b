"""Unreadable videos: skipped where they are read, counted and judged once, in the main process.

A DataLoader worker is a process with its own copy of the dataset, so a count kept in the dataset
is a count per worker: the same list used to stop a run at ``num_workers=0`` and pass at 2, and
every worker logged the same file. The work is therefore split:

* :class:`BadVideoPolicy` (in each dataset, i.e. in each worker) replaces a broken video by the
  next one and reports every file that item failed on in the item (``bad_videos``, a JSON string,
  empty when none). It never counts, logs or stops, except when one item alone meets more
  consecutive broken entries than the run allows (then the run must stop anyway).
* :class:`BadVideoMonitor` (in :meth:`VideoDataModule.on_after_batch_transfer`, main process)
  keeps the distinct bad files of each dataset, logs each one once per run, and stops the run
  with :class:`TooManyBadVideos` once they exceed ``max(max_bad_videos, floor(max_bad_fraction * N))``.
  Batches reach the main process in sampler order whatever the worker count, so the stop comes at
  the same batch, with the same files, at any ``num_workers``. With several processes (DDP) each
  rank judges at the same batches: every ``SYNC_EVERY`` batches the ranks pool their files
  (``all_gather_object``) and all stop together, so a multi-process run may stop up to
  ``SYNC_EVERY`` batches later than one process would (files first met in a run's last
  ``SYNC_EVERY`` batches do not stop it), without a host sync on the other steps.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import torch
import torch.distributed as dist

from smile.data.backends import VideoDecodeError

log = logging.getLogger(__name__)

ITEM_KEY = "bad_videos"  # item / batch field: the files an item failed on (JSON {path: reason}, "" if none)
MAX_ATTEMPTS = 10  # an item tries at least this many entries (more when the run allows more bad files)
SHOWN = 20  # files listed in the stop message
SYNC_EVERY = 20  # batches between the ranks' pooling of their bad files (DDP)
_T = TypeVar("_T")


class TooManyBadVideos(RuntimeError):
    """More distinct videos failed to decode than the run allows; the message is the full report.

    Args:
        text: The report (limit, the config keys to change, the files and their reasons).
        bad_videos: The distinct unreadable files, path -> reason.
    """

    def __init__(self, text: str, bad_videos: Mapping[str, str] | None = None) -> None:
        super().__init__(_original_message(text))
        self.bad_videos = dict(bad_videos or {})


def _original_message(text: str) -> str:
    """The report alone: a DataLoader re-raises a worker's exception as ``type(traceback_text)``."""
    marker = f"{TooManyBadVideos.__name__}: "
    if text.startswith(f"Caught {TooManyBadVideos.__name__}") and marker in text:
        return text.rsplit(marker, 1)[1].rstrip()
    return text


def _describe(path: str, reason: str) -> str:
    return reason if reason.startswith(path) else f"{path}: {reason}"


class BadVideoPolicy:
    """A dataset's broken-video rule: skip to the next entry and report; the limit it is judged by.

    Args:
        paths: The dataset's video paths (item ``i`` is ``paths[i]``).
        max_bad_fraction: Fraction of the videos that may be unreadable.
        source: What to name in messages (the list file).
        max_bad_videos: Unreadable videos always allowed, whatever the dataset's size (a 1 %
            fraction allows none below 100 videos).

    The run stops once more than :attr:`max_bad` = ``max(max_bad_videos, floor(max_bad_fraction *
    len(paths)))`` distinct videos failed. :attr:`config_node` (set by the data module, e.g.
    ``data.train_dataset``) prefixes the keys named in messages.
    """

    def __init__(self, paths: Sequence[str], max_bad_fraction: float, source: str, max_bad_videos: int = 5) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        if isinstance(max_bad_videos, bool) or int(max_bad_videos) != max_bad_videos or max_bad_videos < 0:
            raise ValueError(f"max_bad_videos must be an integer >= 0, got {max_bad_videos!r}")
        self.paths, self.source = paths, source
        self.max_bad_fraction, self.max_bad_videos = float(max_bad_fraction), int(max_bad_videos)
        self.fraction_limit = math.floor(self.max_bad_fraction * len(paths) + 1e-9)
        self.max_bad = max(self.max_bad_videos, self.fraction_limit)
        self.config_node = ""
        self.bad_videos: dict[str, str] = {}  # path -> reason: a cache of this process (not the run's count)

    def key(self, name: str) -> str:
        """The full config key of ``name`` (``data.train_dataset.max_bad_videos``)."""
        return f"{self.config_node}.{name}" if self.config_node else name

    def load(self, index: int, load: Callable[[int], _T]) -> tuple[int, _T, dict[str, str]]:
        """``(j, load(j), failures)`` for the first ``j`` from ``index`` on (wrapping) that decodes.

        ``failures`` maps every entry tried before ``j`` to its reason (known ones are not
        decoded again), whichever process runs this, so items are the same for any worker count.
        Only VideoDecodeError marks a broken video; anything else propagates.
        """
        failures: dict[str, str] = {}
        attempts = min(len(self.paths), max(MAX_ATTEMPTS, self.max_bad + 1))
        for attempt in range(attempts):
            j = (index + attempt) % len(self.paths)
            path = self.paths[j]
            if path not in self.bad_videos:
                try:
                    return j, load(j), failures
                except VideoDecodeError as err:
                    self.bad_videos[path] = str(err)
            failures[path] = self.bad_videos[path]
        where = f"item {index} and the {attempts - 1} entries after it all failed"
        raise TooManyBadVideos(self.explain(failures, where), failures)

    def explain(self, bad: Mapping[str, str], where: str) -> str:
        """The stop report: which limit, the files and their reasons, and (last) the keys to change."""
        n = len(self.paths)
        head = f"Too many unreadable videos: {len(bad)} distinct videos of the {n} in {self.source} failed"
        lines = [
            f"{head} to decode ({where}){self._limit_sentence(len(bad))}",
            f"Unreadable videos ({len(bad)}):",
            *(f"  {_describe(path, reason)}" for path, reason in list(bad.items())[:SHOWN]),
        ]
        if len(bad) > SHOWN:
            lines.append(f"  ... and {len(bad) - SHOWN} more (`smile-data check --list ...` lists every one)")
        fraction = math.ceil(1000 * len(bad) / n) / 1000  # floor(fraction * n) >= len(bad)
        if len(bad) > self.max_bad:
            lines.append(
                f"Fix or remove them, or allow more: {self.key('max_bad_videos')}={len(bad)} "
                f"or {self.key('max_bad_fraction')}={fraction:g}"
            )
        else:
            lines.append(
                f"Check that the paths in {self.source} point at the videos (a wrong root makes them all missing)"
            )
        return "\n".join(lines)

    def _limit_sentence(self, count: int) -> str:
        if count <= self.max_bad:
            return ", and no readable video is left to replace them."
        binding = "max_bad_videos" if self.max_bad_videos >= self.fraction_limit else "max_bad_fraction"
        return (
            f", more than {binding} allows. The limit is {self.max_bad} = max(max_bad_videos={self.max_bad_videos}, "
            f"floor(max_bad_fraction={self.max_bad_fraction:g} x {len(self.paths)}) = {self.fraction_limit})."
        )


def encode_failures(failures: Mapping[str, str]) -> str:
    """An item's ``bad_videos`` field: a string, so the default collate makes a list of them."""
    return json.dumps(dict(failures)) if failures else ""


class BadVideoTracker:
    """The run's distinct unreadable files of one dataset (main process)."""

    def __init__(self, policy: BadVideoPolicy, restored: Mapping[str, str]) -> None:
        self.policy = policy
        self.bad: dict[str, str] = dict(restored)  # path -> reason, in the order found
        self.unreported = len(self.bad)  # not yet in a batch's ``skipped`` count
        self.batches = 0

    def admit(self, found: Mapping[str, str], announce: bool = True) -> None:
        """Add new files; ``announce`` logs each new one (once per run: files seen before are known)."""
        for path, reason in found.items():
            if path in self.bad:
                continue
            self.bad[path] = reason
            self.unreported += 1
            if announce:
                log.warning(
                    "skipping unreadable video (%d so far, %d allowed: %s / %s): %s",
                    len(self.bad),
                    self.policy.max_bad,
                    self.policy.key("max_bad_videos"),
                    self.policy.key("max_bad_fraction"),
                    _describe(path, reason),
                )

    def check(self, where: str) -> None:
        """Raise :class:`TooManyBadVideos` when the files exceed the policy's limit."""
        if len(self.bad) > self.policy.max_bad:
            raise TooManyBadVideos(self.policy.explain(self.bad, where), self.bad)


class DatasetHolder(Protocol):
    """What the monitor reads from the data module."""

    trainer: Any
    train_dataset: Any
    val_dataset: Any
    test_dataset: Any


def _stage(dm: DatasetHolder) -> tuple[Any, str]:
    """(the dataset the trainer is reading now, where in the run) for messages."""
    trainer = dm.trainer
    stage = getattr(getattr(trainer, "state", None), "stage", None)
    stage = getattr(stage, "value", stage)
    if trainer is None:
        return dm.train_dataset, "while loading training batches"
    if stage == "train":
        return dm.train_dataset, f"in epoch {trainer.current_epoch}, after {trainer.global_step} training steps"
    if stage in ("sanity_check", "validate"):
        return dm.val_dataset, "during validation"
    return (dm.test_dataset, "during testing") if stage == "test" else (None, "")


def _pool(found: dict[str, str], world: int) -> dict[str, str]:
    """Every rank's files (a collective: all ranks call it at the same batch)."""
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, found)
    return {path: reason for part in gathered for path, reason in part.items()}


class BadVideoMonitor:
    """Judges the ``bad_videos`` reports of batches in the main process (see the module docstring).

    Args:
        train, val, test: The data module's datasets: their policies learn their config node
            (``data.train_dataset`` ...; a dataset used twice keeps the first), which messages name.
    """

    STATE_KEY = "bad_videos"

    def __init__(self, train: Any, val: Any = None, test: Any = None) -> None:
        for node, dataset in (("data.train_dataset", train), ("data.val_dataset", val), ("data.test_dataset", test)):
            policy = getattr(dataset, "policy", None)
            if isinstance(policy, BadVideoPolicy) and not policy.config_node:
                policy.config_node = node
        self.trackers: dict[str, BadVideoTracker] = {}
        self._restored: dict[str, dict[str, str]] = {}

    def observe(self, batch: dict[str, Any], dm: DatasetHolder) -> None:
        """Count the batch's reports (removing the field), stop if too many, and turn ``skipped``
        into the number of distinct files not counted before, so its running sum counts files."""
        reports = batch.pop(ITEM_KEY, None)
        dataset, where = _stage(dm)
        policy = getattr(dataset, "policy", None)
        if reports is None or not isinstance(policy, BadVideoPolicy):
            return
        node = policy.config_node or policy.source
        if node not in self.trackers:
            self.trackers[node] = BadVideoTracker(policy, self._restored.pop(node, {}))
        tracker = self.trackers[node]
        tracker.batches += 1
        tracker.admit({p: r for text in reports if text for p, r in json.loads(text).items()})
        world = dm.trainer.world_size if dm.trainer is not None else 1
        if world == 1:
            tracker.check(where)
        elif tracker.batches % SYNC_EVERY == 0:
            tracker.admit(_pool(tracker.bad, world), announce=False)
            tracker.check(f"{where}; pooled over {world} processes")
        if isinstance(batch.get("skipped"), torch.Tensor):
            batch["skipped"] = _count_tensor(batch["skipped"], tracker.unreported)
            tracker.unreported = 0

    def state_dict(self) -> dict[str, Any]:
        """``{"bad_videos": {node: {path: reason}}}``, or ``{}`` when none: the files found so far,
        which a resumed run keeps counting (and does not log again)."""
        found = {**self._restored, **{node: dict(t.bad) for node, t in self.trackers.items() if t.bad}}
        return {self.STATE_KEY: found} if found else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Take this monitor's entry of a data module's state (older checkpoints have none); the rest back."""
        rest = dict(state)
        found = rest.pop(self.STATE_KEY, {})
        self._restored = {str(node): dict(bad) for node, bad in found.items()}
        self.trackers.clear()
        return rest


def _count_tensor(like: torch.Tensor, count: int) -> torch.Tensor:
    """Zeros shaped like ``like`` whose sum is ``count``."""
    out = torch.zeros_like(like)
    if count and out.numel():
        out.view(-1)[0] = count
    return out
