"""Packing an object folder into ``objects.u8`` + ``index.json`` (CLI: ``smile-data pack-objects``)."""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smile.data.objects.files import _aspects, _read_into, read_object, scan_objects

INDEX_FILE = "index.json"
ARRAY_FILE = "objects.u8"
FORMAT = "smile-objects"
VERSION = 1


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


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


# ----------------------------------------------------------------------------------- packing


def pack_objects(
    root: str | Path,
    out: str | Path,
    list_file: str | Path | None = None,
    max_side: int = 256,
    skip_bad: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> PackReport:
    """Validate and pack an object folder into ``<out>/objects.u8`` + ``<out>/index.json``.

    Args:
        root: folder of ``<category>/<name>.png`` RGBA objects.
        out: output folder (created; an existing pack there is replaced atomically).
        list_file: optional subset, one ``<category>/<name>.png`` per line.
        max_side: side S of the stored square sprites. 256 keeps the detail of the largest
            boxes (the reference resizes the original PNG every frame; boxes reach ~200 px);
            the overlay's cost barely depends on S, the bank's bytes are ``S * S * 4`` per object.
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
