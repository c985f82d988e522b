"""Loading object banks: a packed folder (memory-mapped), a PNG folder, or still images."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from smile.data.objects.files import (
    IMAGE_SUFFIXES,
    _aspects,
    _image_paths,
    _read_image,
    _read_into,
    _ReadResult,
    read_object,
    scan_objects,
)
from smile.data.objects.packing import FORMAT, INDEX_FILE, VERSION
from smile.motion.sprites import ObjectBank

_SLOW_FOLDER = 1000  # objects: above this, load_objects on a PNG folder warns to pack first


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
    max_side: int = 256,
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
