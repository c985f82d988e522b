"""Video indexes from each published dataset layout, all as one :class:`DatasetIndex` (SPEC §2.1, §7.3).

:func:`index_dataset` reads one split of any format: records ``(path, label, video_id)``, the
class names (``classes[label]``) and the annotated videos that are missing. The finetuning
datasets take the index as it is; :func:`write_list` turns it into the ``<path> <label>`` list
that :class:`~smile.data.datasets.list.VideoListDataset` reads.

Formats (``annotations`` defaults to ``root``):

* ``list``: an existing VideoMAE/SMILE list (``<path> <label>`` or ``path,label`` CSV), read with
  :func:`~smile.data.datasets.list.read_video_list`. ``annotations`` (or ``root``) is the list file,
  or a folder holding ``<split>.csv``; a directory ``root`` is what relative paths resolve against.
  Class names come from ``classes.txt`` beside the list, else ``class_<i>``.
* ``k400`` (and K600/K700/Mini-Kinetics-200): ``<annotations>/<split>.csv`` (``validate.csv`` and
  ``val.csv`` both serve ``val``) with columns ``label,youtube_id,time_start,time_end,split``
  (extra columns ignored; a test CSV without ``label`` gives label -1). The video is
  ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (else ``<youtube_id>.<ext>``), flat or in class
  folders (any spelling: every subfolder is scanned once) under ``<root>/<split>/`` or ``<root>/``.
  Labels index the sorted class names of ``train.csv`` when it exists, so that train, val and test
  agree, else of the split's own CSV.
* ``ssv2``: ``something-something-v2-labels.json`` (template -> index) and ``-train.json`` /
  ``-validation.json`` / ``-test.json``; the class is the template without ``[]``; videos are
  ``<root>/<id>.webm`` (or another video extension). The test json has no templates: label -1.
* ``ucf101``: ``classInd.txt``, ``trainlist0<fold>.txt``, ``testlist0<fold>.txt`` (``val`` = test);
  label = classInd index - 1; class and folder names match case-insensitively
  (``HandstandPushups`` vs ``HandStandPushups``).
* ``hmdb51``: ``<class>_test_split<fold>.txt`` (in ``testTrainMulti_7030_splits/`` or directly in
  ``annotations``), lines ``<name>.avi <flag>``: 1 = train, 2 = test (also ``val``), 0 = unused.
  Classes sorted by name; videos in ``<root>/<class>/<name>.avi``.

Annotated videos whose file is absent are dropped and reported (:attr:`DatasetIndex.missing`),
never fatal: real Kinetics copies miss a few percent. Folders are listed once with ``os.scandir``,
never stat'ed per record.
"""

from smile.data.indexes.build import index_dataset, write_list
from smile.data.indexes.common import CLASSES_FILE, FORMATS, VIDEO_EXTS, DatasetIndex, Row, VideoRecord
from smile.data.indexes.readers import list_classes

__all__ = [
    "CLASSES_FILE",
    "FORMATS",
    "VIDEO_EXTS",
    "DatasetIndex",
    "Row",
    "VideoRecord",
    "index_dataset",
    "list_classes",
    "write_list",
]
