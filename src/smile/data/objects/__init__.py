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

from smile.data.objects.files import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # public constants outside __all__
from smile.data.objects.files import ObjectFileError, read_object, scan_objects
from smile.data.objects.loading import is_packed, load_images, load_objects, load_packed
from smile.data.objects.packing import ARRAY_FILE, INDEX_FILE, PackReport, pack_objects
from smile.data.objects.packing import FORMAT as FORMAT
from smile.data.objects.packing import VERSION as VERSION

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
