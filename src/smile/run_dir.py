"""Run-directory names from the command line's overrides, and the command saved in the directory.

Hydra's own ``override_dirname`` (``key=value,key=value``) nests a path-valued override into
folders, grows past the 255-byte file-name limit with a dozen overrides, and puts ``=`` and ``,``
into every checkpoint path, so the printed path cannot be pasted back into ``model.init_from=``.
:func:`run_dir_name` keeps what that name was for (the same overrides give the same directory, so
re-running a command resumes it) with a name made of ``[A-Za-z0-9._-]`` only:

- each override becomes ``<last key part>-<value>`` (``data.masking.ratio=0.5`` -> ``ratio-0.5``),
  a value that is long or not shell/grammar safe (a path, a list, quotes) becomes a 6-hex hash of it
  (``list_file-3f9a1c``), a deletion ``~key`` becomes ``<last key part>-del``;
- items are sorted like Hydra's (by the override text) and joined with ``_``;
- unless every item is shown exactly (a top-level key and a plain value, e.g. ``trainer-gpu``), an
  8-hex hash of the full override list ends the name, so two different commands never share a
  directory; the name is capped at :data:`MAX_NAME` characters (the hash kept).

Importing this module registers the ``smile_run_dir`` resolver that ``configs/hydra/default.yaml``
uses; ``smile.train`` and ``smile.eval`` import it before ``@hydra.main`` composes anything.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["MAX_NAME", "RESOLVER", "RecordCommand", "command_line", "run_dir_name"]

RESOLVER = "smile_run_dir"
MAX_NAME = 120  # characters of the whole directory name (file systems allow 255 bytes)
MAX_VALUE = 24  # longer values are shown as a hash
SAFE_VALUE = re.compile(r"[A-Za-z0-9._-]+")  # kept as written
EXACT = re.compile(r"[A-Za-z0-9.]+")  # no separator inside: the item reads back unambiguously
COMMAND_FILE = "command.txt"


def _digest(text: str, size: int) -> str:
    """The first ``size`` hex digits of the SHA-1 of ``text`` (stable across runs and machines)."""
    return hashlib.sha1(text.encode()).hexdigest()[:size]


def _item(override: Override) -> tuple[str, bool]:
    """``(<last key part>-<value>, whether that text shows the override exactly)``."""
    key = override.key_or_group
    part = re.sub(r"[^A-Za-z0-9_]", "", re.split(r"[./]", key)[-1]) or "key"
    if override.is_delete():
        return f"{part}-del", False
    value = override.get_value_element_as_str()
    shown = value if SAFE_VALUE.fullmatch(value) and len(value) <= MAX_VALUE else _digest(value, 6)
    exact = shown == value and key == part and bool(EXACT.fullmatch(key)) and bool(EXACT.fullmatch(value))
    return f"{part}-{shown}", exact and override.input_line == f"{key}={value}"


def run_dir_name(overrides: Sequence[str], exclude_keys: Sequence[str] = ()) -> str:
    """The directory name of a run with these command-line ``overrides`` ('' when none count).

    Args:
        overrides: Hydra's task overrides as typed (``hydra.overrides.task``).
        exclude_keys: Keys (or config groups) that do not change the run: left out of the name
            and of its hash (``hydra.job.config.override_dirname.exclude_keys``).
    """
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    kept = sorted((o for o in parsed if o.key_or_group not in set(exclude_keys)), key=lambda o: str(o.input_line))
    if not kept:
        return ""
    items, exact = zip(*(_item(o) for o in kept), strict=True)
    name = "_".join(items)
    if all(exact) and len(name) <= MAX_NAME:
        return name
    digest = _digest("\n".join(str(o.input_line) for o in kept), 8)
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('_-.')}_{digest}"


def _resolve_run_dir(overrides: ListConfig | Sequence[str], exclude_keys: ListConfig | Sequence[str]) -> str:
    """The ``smile_run_dir`` resolver: :func:`run_dir_name` of nodes taken unresolved (a value
    written ``${...}`` on the command line is named as written)."""

    def plain(node: ListConfig | Sequence[str]) -> list[str]:
        items = OmegaConf.to_container(node, resolve=False) if isinstance(node, ListConfig) else list(node)
        assert isinstance(items, list)
        return [str(x) for x in items]

    return run_dir_name(plain(overrides), plain(exclude_keys))


OmegaConf.register_new_resolver(RESOLVER, _resolve_run_dir, replace=True)


def command_line(argv: Sequence[str] | None = None) -> str:
    """``argv`` (default ``sys.argv``) as a shell command to paste (``python train.py a=1 'b=[1,2]'``)."""
    args = list(sys.argv if argv is None else argv)
    prefix = ["python"] if args and args[0].endswith(".py") else []
    return shlex.join([*prefix, *args])


def _is_rank_zero() -> bool:
    """Whether this process is the first of its job (DDP children and other SLURM tasks are not)."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


class RecordCommand(Callback):
    """Hydra callback: append each invocation's command to ``<run dir>/command.txt``.

    One entry per start (time, working directory, the command as typed; for a sweep job also the
    single-run command of that job), so a resumed run keeps the history of how it was run. Hydra
    writes the override list itself to ``<run dir>/.hydra/overrides.yaml``.
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the entry once the run directory exists (first process of the job only)."""
        if not _is_rank_zero():
            return
        hydra_cfg = config.hydra
        lines = [f"# {datetime.now().isoformat(timespec='seconds')} in {os.getcwd()}", command_line()]
        if hydra_cfg.mode == RunMode.MULTIRUN:
            task = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
            assert isinstance(task, list)
            lines.append(f"# this job alone: {command_line([sys.argv[0], *map(str, task)])}")
        with Path(hydra_cfg.runtime.output_dir, COMMAND_FILE).open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
