"""Object and still-image files for the synthetic-motion overlay: scan, validate, pack, load.

SMILE's objects are segmented RGBA PNGs in ``<root>/<category>/<name>.png`` (SPEC §2.1); the
reference reopens two of them from disk for every clip. Here they are decoded **once**:
``pack_objects`` (CLI: ``smile-data pack-objects``) validates every file and writes

- ``<out>/objects.u8``: one raw uint8 array ``[N, S, S, 4]`` (RGBA, straight alpha), every object
  resized to ``S x S`` ignoring its aspect ratio (the overlay stretches objects to their box anyway,
  SPEC §2.4; one bicubic resample from the original file, antialiased by Pillow, which also
  premultiplies alpha while resizing so edges keep their colour);
- ``<out>/index.json``: names (``<category>/<file>``), categories, original sizes and aspect
  ratios, ``S`` (``max_side``), N and the format version.

``load_packed`` maps the array with ``numpy.memmap``: no PNG decoding at training time, and worker
processes share the page cache. Files without an alpha channel are refused: the reference would
silently take the blue channel as alpha (SPEC §10.15).
"""

from __future__ import annotations

import functools
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from smile.motion.sprites import ObjectBank

__all__ = [
    "ARRAY_FILE",
    "INDEX_FILE",
    "ObjectFileError",
    "PackReport",
    "is_packed",
    "load_images",
    "load_objects",
    "load_packed",
    "pack_objects",
    "read_object",
    "scan_objects",
]

INDEX_FILE = "index.json"
ARRAY_FILE = "objects.u8"
FORMAT = "smile-objects"
VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SLOW_FOLDER = 1000  # objects: above this, load_objects on a PNG folder warns to pack first


class ObjectFileError(ValueError):
    """A file that cannot be used as an object; ``reason`` is ``no_alpha``, ``unreadable`` or ``empty_alpha``."""

    def __init__(self, path: Path, reason: str, message: str) -> None:
        super().__init__(message)
        self.path, self.reason = Path(path), reason


@dataclass
class PackReport:
    """What ``pack_objects`` did. ``skipped`` maps a reason to the names left out for it."""

    out: Path | None
    num_objects: int
    max_side: int
    nbytes: int
    skipped: dict[str, list[str]] = field(default_factory=dict)
    opaque: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def summary(self) -> str:
        where = f" into {self.out}" if self.out is not None else ""
        lines = [
            f"packed {self.num_objects} objects ({self.max_side}x{self.max_side} RGBA){where}: "
            f"{_human_bytes(self.nbytes)} in {self.seconds:.1f} s"
        ]
        if self.num_skipped:
            lines.append(f"skipped {self.num_skipped}:")
            for reason, names in sorted(self.skipped.items()):
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                lines.append(f"  {reason}: {len(names)} ({shown})")
        if self.opaque:
            lines.append(
                f"note: {len(self.opaque)} objects have alpha 255 everywhere (not segmented?), e.g. {self.opaque[0]}"
            )
        return "\n".join(lines)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


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


def read_object(path: str | Path, max_side: int = 128) -> tuple[np.ndarray, tuple[int, int], bool]:
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


# ----------------------------------------------------------------------------------- packing


def pack_objects(
    root: str | Path,
    out: str | Path,
    list_file: str | Path | None = None,
    max_side: int = 128,
    skip_bad: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> PackReport:
    """Validate and pack an object folder into ``<out>/objects.u8`` + ``<out>/index.json``.

    Args:
        root: folder of ``<category>/<name>.png`` RGBA objects.
        out: output folder (created; an existing pack there is replaced atomically).
        list_file: optional subset, one ``<category>/<name>.png`` per line.
        max_side: side S of the stored square sprites.
        skip_bad: leave out (and count) files without alpha, fully transparent or unreadable
            ones, instead of raising :class:`ObjectFileError` on the first.
        workers: decoding threads (default ``min(8, cpu_count)``).
        progress: show a rich progress bar.
    """
    if max_side < 4:
        raise ValueError(f"max_side must be >= 4, got {max_side}")
    start = time.perf_counter()
    root, out = Path(root), Path(out)
    paths = scan_objects(root, list_file)
    out.mkdir(parents=True, exist_ok=True)
    tmp_array, tmp_index = out / (ARRAY_FILE + ".tmp"), out / (INDEX_FILE + ".tmp")
    try:
        # a raw file without header: index.json describes it
        array = np.memmap(tmp_array, dtype=np.uint8, mode="w+", shape=(len(paths), max_side, max_side, 4))
        reader = functools.partial(read_object, max_side=max_side)
        res = _read_into(paths, root, array, reader, skip_bad, workers, progress, "packing objects")
        array.flush()
        del array
        n = len(res.names)
        os.truncate(tmp_array, n * max_side * max_side * 4)  # drop the rows reserved for skipped files
        index = {
            "format": FORMAT,
            "version": VERSION,
            "num_objects": n,
            "max_side": max_side,
            "file": ARRAY_FILE,
            "dtype": "uint8",
            "layout": "NHWC",
            "alpha": "straight",
            "resample": "bicubic, stretched to square",
            "names": res.names,
            "categories": res.categories,
            "sizes": [list(s) for s in res.sizes],
            "aspect": [round(float(a), 6) for a in _aspects(res.sizes)],
            "source_root": str(root.resolve()),
            "list_file": str(Path(list_file).resolve()) if list_file is not None else None,
            "skipped": res.skipped,
        }
        tmp_index.write_text(json.dumps(index))
        os.replace(tmp_array, out / ARRAY_FILE)
        os.replace(tmp_index, out / INDEX_FILE)
    finally:
        for tmp in (tmp_array, tmp_index):
            tmp.unlink(missing_ok=True)
    nbytes = (out / ARRAY_FILE).stat().st_size + (out / INDEX_FILE).stat().st_size
    return PackReport(out, n, max_side, nbytes, res.skipped, res.opaque, time.perf_counter() - start)


def is_packed(path: str | Path) -> bool:
    """True for a folder written by :func:`pack_objects`."""
    return (Path(path) / INDEX_FILE).is_file()


def _read_index(out: Path) -> dict:
    index = json.loads((out / INDEX_FILE).read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ValueError(
            f"{out / INDEX_FILE} is not a {FORMAT} v{VERSION} index (format={index.get('format')!r}, "
            f"version={index.get('version')!r}); re-pack with `smile-data pack-objects`"
        )
    return index


def load_packed(out: str | Path) -> ObjectBank:
    """Memory-map a packed object folder as an :class:`ObjectBank` (uint8, ``[N, 4, S, S]`` view).

    The map is copy-on-write (``mode="c"``): the file is never modified. The bank pickles as
    "reopen this folder", so worker processes share the page cache instead of copying.
    """
    out = Path(out)
    index = _read_index(out)
    n, side = int(index["num_objects"]), int(index["max_side"])
    path = out / index["file"]
    expected = n * side * side * 4
    if not path.is_file() or path.stat().st_size != expected:
        found = path.stat().st_size if path.is_file() else "missing"
        raise ValueError(
            f"{path} should hold {expected} bytes ({n} x {side} x {side} x 4) but is {found}; "
            "the pack is incomplete: re-run `smile-data pack-objects`"
        )
    array = np.memmap(path, dtype=np.uint8, mode="c", shape=(n, side, side, 4))
    sprites = torch.from_numpy(array).permute(0, 3, 1, 2)  # [N, 4, S, S] view, no copy
    return ObjectBank(
        sprites,
        torch.tensor(index["aspect"], dtype=torch.float32),
        list(index["names"]),
        list(index["categories"]),
        reload=functools.partial(load_packed, str(out)),
    )


# ----------------------------------------------------------------------------------- loading


def _select(bank: ObjectBank, list_file: str | Path) -> ObjectBank:
    """The objects a list file names, in its order, from a packed bank."""
    wanted = [ln.strip() for ln in Path(list_file).read_text().splitlines()]
    wanted = [w for w in wanted if w and not w.startswith("#")]
    where = {name: i for i, name in enumerate(bank.names)}
    missing = [w for w in wanted if w not in where]
    if missing:
        raise KeyError(f"{len(missing)} objects of {list_file} are not in the pack (e.g. {missing[:3]}); re-pack")
    return bank.subset([where[w] for w in wanted])


def _bank(array: np.ndarray, res: _ReadResult) -> ObjectBank:
    n = len(res.names)
    return ObjectBank.from_arrays(array[:n], res.names, res.categories, _aspects(res.sizes), layout="nhwc")


def load_objects(
    root_or_packed: str | Path,
    list_file: str | Path | None = None,
    max_side: int = 128,
    skip_bad: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> ObjectBank:
    """Object bank from a packed folder (memory-mapped) or a PNG folder (decoded into memory).

    A PNG folder is validated and resized exactly as :func:`pack_objects` does; for more than a
    thousand objects that is slow at every start, so a warning suggests packing once.
    ``list_file`` selects a subset in both cases (``max_side`` only applies to PNG folders).
    """
    path = Path(root_or_packed)
    if is_packed(path):
        bank = load_packed(path)
        return _select(bank, list_file) if list_file is not None else bank
    paths = scan_objects(path, list_file)
    if len(paths) > _SLOW_FOLDER:
        warnings.warn(
            f"decoding {len(paths)} object PNGs from {path} at start-up; pack them once with "
            f"`smile-data pack-objects --root {path} --out <dir>` and load the packed folder instead",
            stacklevel=2,
        )
    array = np.empty((len(paths), max_side, max_side, 4), dtype=np.uint8)
    reader = functools.partial(read_object, max_side=max_side)
    res = _read_into(paths, path, array, reader, skip_bad, workers, progress, "loading objects")
    return _bank(array, res)


def load_images(
    folder: str | Path,
    size: int = 224,
    skip_bad: bool = False,
    workers: int | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> ObjectBank:
    """Still images (e.g. Places) for ``background="image"``, as an RGBA :class:`ObjectBank`.

    Every JPEG/PNG/WebP/BMP under ``folder`` (recursive, sorted; the first ``limit`` if given) is
    centre-cropped to a square and resized to ``size x size`` (alpha 255 unless the file has
    one). The bank is in memory: 80k images at 224 px take 16 GB, so pick ``size`` / ``limit``
    accordingly; the background step resizes to the frame size anyway.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} is not a directory")
    paths = _image_paths(folder)[:limit]
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    array = np.empty((len(paths), size, size, 4), dtype=np.uint8)
    reader = functools.partial(_read_image, size=size)
    return _bank(array, _read_into(paths, folder, array, reader, skip_bad, workers, progress, "loading images"))
