"""Object and still-image files: scan a folder, validate and decode each file, decode many in parallel."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ObjectFileError(ValueError):
    """A file that cannot be used as an object; ``reason`` is ``no_alpha``, ``unreadable`` or ``empty_alpha``."""

    def __init__(self, path: Path, reason: str, message: str) -> None:
        super().__init__(message)
        self.path, self.reason = Path(path), reason


# ----------------------------------------------------------------------------------- scanning


def scan_objects(root: str | Path, list_file: str | Path | None = None) -> list[Path]:
    """Object PNGs under ``root``: all ``<root>/<category>/<name>.png`` (sorted), or the ones a
    list file names, in its order (one ``<category>/<name>.png`` per line, as the reference's
    ``object_instances.txt``; blank lines and ``#`` comments ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"object root {root} is not a directory (expected <root>/<category>/<name>.png)")
    if list_file is None:
        paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not paths:
            raise FileNotFoundError(
                f"no objects found under {root}: expected RGBA PNGs as <root>/<category>/<name>.png"
            )
        return paths
    lines = [ln.strip() for ln in Path(list_file).read_text().splitlines()]
    paths = [root / ln for ln in lines if ln and not ln.startswith("#")]
    if not paths:
        raise FileNotFoundError(f"object list {list_file} names no objects")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} objects in {list_file} are missing under {root} (e.g. {shown}); "
            "check --root and the list file"
        )
    return paths


def _image_paths(folder: Path) -> list[Path]:
    found = (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    return sorted(p for p in found if p.is_file())


# ----------------------------------------------------------------------------------- reading


def _open_rgba(path: Path, require_alpha: bool) -> Image.Image:
    """Decode fully and convert to RGBA; raises :class:`ObjectFileError` naming the file and the fix."""
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
            mode = im.mode
            rgba = im.convert("RGBA")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ObjectFileError(
            path,
            "unreadable",
            f"{path} cannot be decoded as an image ({type(exc).__name__}: {exc}); the file is corrupt or not an "
            "image: re-export or delete it, or pass --skip-bad (skip_bad=True) to leave it out",
        ) from exc
    if require_alpha and not has_alpha:
        raise ObjectFileError(
            path,
            "no_alpha",
            f"{path} has no alpha channel (mode {mode}); SMILE objects must be RGBA PNGs with the object "
            "segmented in alpha (the reference would silently use the blue channel as alpha); re-export it "
            "with transparency or pass --skip-bad (skip_bad=True) to leave it out",
        )
    return rgba


def read_object(path: str | Path, max_side: int = 256) -> tuple[np.ndarray, tuple[int, int], bool]:
    """One object as uint8 ``[S, S, 4]`` (stretched to ``S = max_side``), its original ``(w, h)``
    and whether its alpha is 255 everywhere. Raises :class:`ObjectFileError`."""
    path = Path(path)
    rgba = _open_rgba(path, require_alpha=True)
    alpha_min, alpha_max = rgba.getchannel("A").getextrema()
    if alpha_max == 0:
        raise ObjectFileError(
            path,
            "empty_alpha",
            f"{path} is fully transparent (alpha 0 everywhere), so nothing of it would be pasted; "
            "re-export it or pass --skip-bad (skip_bad=True) to leave it out",
        )
    size = rgba.size
    arr = np.asarray(rgba.resize((max_side, max_side), Image.Resampling.BICUBIC))  # Pillow premultiplies RGBA
    return arr, size, alpha_min == 255


def _read_image(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int], bool]:
    """A still image, centre-cropped to a square and resized to ``size``, as uint8 ``[S, S, 4]``."""
    rgba = _open_rgba(path, require_alpha=False)
    w, h = rgba.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    arr = np.asarray(rgba.resize((size, size), Image.Resampling.BICUBIC, box=box))
    return arr, (w, h), True


@dataclass
class _ReadResult:
    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    opaque: list[str] = field(default_factory=list)


def _progress(enabled: bool, total: int, label: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(advance, close) of a rich progress bar, or no-ops."""
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda: bar.advance(task)), bar.stop


def _read_into(
    paths: Sequence[Path],
    root: Path,
    sink: np.ndarray,
    reader: Callable[[Path], tuple[np.ndarray, tuple[int, int], bool]],
    skip_bad: bool,
    workers: int | None,
    progress: bool,
    label: str,
) -> _ReadResult:
    """Decode ``paths`` with a thread pool (Pillow releases the GIL while decoding and resizing)
    and write the good ones, in order, into consecutive rows of ``sink``."""

    def safe(path: Path):
        try:
            return reader(path)
        except ObjectFileError as exc:
            return exc

    res = _ReadResult()
    workers = workers or min(8, os.cpu_count() or 1)
    advance, close = _progress(progress, len(paths), label)
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for path, out in zip(paths, pool.map(safe, paths), strict=True):
            name = path.relative_to(root).as_posix()
            advance()
            if isinstance(out, ObjectFileError):
                if not skip_bad:
                    raise out
                res.skipped.setdefault(out.reason, []).append(name)
                continue
            arr, size, opaque = out
            sink[len(res.names)] = arr
            res.names.append(name)
            res.categories.append(path.parent.relative_to(root).as_posix() if path.parent != root else "")
            res.sizes.append(size)
            if opaque:
                res.opaque.append(name)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close()
    if not res.names:
        reasons = ", ".join(f"{k}: {len(v)}" for k, v in res.skipped.items())
        raise ValueError(f"no usable files among the {len(paths)} under {root} (all skipped: {reasons})")
    return res


def _aspects(sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    return np.array([w / h for w, h in sizes], dtype=np.float32)
