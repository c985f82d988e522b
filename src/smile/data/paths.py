"""Paths a dataset needs, checked up front: a missing or unreadable folder is named, with the key to fix.

Without this, a mistyped data root surfaces as "16 of 16 videos failed to decode" or as a missing
annotation file inside a folder that does not exist at all.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_folder", "check_readable_file"]


def check_folder(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a ``Path`` if it is a folder this process can list; else an error naming ``what``.

    Args:
        path: The folder.
        what: How the user set it, e.g. ``"data.source.root"`` or ``"--root"``.

    Raises:
        FileNotFoundError: it does not exist, or is not a folder.
        PermissionError: it cannot be listed or entered by this user.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        hint = f" ({parent} exists)" if parent is not None and parent != Path("/") else ""
        raise FileNotFoundError(f"{what}: {folder}: no such folder{hint}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: {folder}: not a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise PermissionError(f"{what}: {folder}: permission denied (this user cannot list the folder)")
    return folder


def check_readable_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a ``Path`` if it is a file this process can read; else an error naming ``what``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what}: {file}: no such file")
    if not os.access(file, os.R_OK):
        raise PermissionError(f"{what}: {file}: permission denied (this user cannot read the file)")
    return file
