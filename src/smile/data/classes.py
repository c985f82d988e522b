"""The class count and names come from the data: the dataset index, a list's ``classes.txt``, or labels.

A configured ``data.num_classes`` that disagrees with the training data is an error naming both
(a 101-way head on a 4-class UCF101 copy trains without a word otherwise); ``null`` takes the
count from the data. The model is built from ``model.num_classes`` before the data module exists,
so :func:`resolve_num_classes` reads the classes from the config cheaply (only the training
split's index, i.e. its annotation files) for the builder to fill ``data.num_classes`` in first;
:class:`~smile.data.VideoDataModule` checks the same again with its datasets.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig

from smile.data.datasets.records import read_source
from smile.data.indexes import DatasetIndex

__all__ = ["check_num_classes", "data_classes", "dataset_classes", "default_class_names", "resolve_num_classes"]


def default_class_names(num_classes: int) -> list[str]:
    """``class_0 ... class_<K-1>``: the names of classes nothing names."""
    return [f"class_{i}" for i in range(num_classes)]


def dataset_classes(dataset: Any) -> tuple[list[str] | None, str]:
    """``(class names, where they come from)`` of a dataset; names None when it cannot tell.

    Datasets with a ``class_names`` attribute say it (the classification dataset from its index or
    list, the synthetic one its motion names); a dataset with ``labels`` only (a pretraining list)
    knows ``class_<i>`` up to its largest label.
    """
    where = str(getattr(dataset, "classes_file", "") or f"the training dataset ({type(dataset).__name__})")
    names = getattr(dataset, "class_names", None)
    if names is not None:
        return list(names), where
    labels = getattr(dataset, "labels", None)
    if labels is None or len(labels) == 0:
        return None, where
    return default_class_names(int(max(labels)) + 1), where


def check_num_classes(configured: int | None, names: list[str] | None, where: str) -> tuple[int, list[str]]:
    """The class count and names to use, or a one-line error when the configured count contradicts the data.

    Raises:
        ValueError: ``configured`` differs from ``len(names)``, or neither is known.
    """
    if names is None:
        if configured is None:
            raise ValueError(
                f"data.num_classes=null but {where} does not name its classes: set data.num_classes=<count>"
            )
        return int(configured), default_class_names(int(configured))
    if configured is not None and int(configured) != len(names):
        raise ValueError(
            f"data.num_classes={configured} but {where} lists {len(names)} classes: "
            f"set data.num_classes={len(names)} (or null to take it from the data)"
        )
    return len(names), names


def data_classes(configured: int | None, dataset: Any) -> tuple[int | None, list[str] | None]:
    """The data module's ``(num_classes, class_names)``: :func:`check_num_classes`, lenient when nothing is known.

    A dataset that names no classes with no configured count (pretraining on unlabelled data) gives
    ``(None, None)`` instead of an error.
    """
    names, where = dataset_classes(dataset)
    if names is None and configured is None:
        return None, None
    return check_num_classes(configured, names, where)


def _node_classes(node: DictConfig) -> tuple[list[str] | None, str]:
    """Classes of the ``data.train_dataset`` node: its index / list file alone when it has one, else the dataset."""
    from hydra.utils import instantiate  # the builder's tool; imported here so that smile.data stays Hydra-free

    if "records_or_list_file" not in node:  # synthetic and pretraining lists: cheap to build
        return dataset_classes(instantiate(node))
    source = node.records_or_list_file
    if isinstance(source, DictConfig) and "_target_" in source:
        source = instantiate(source)  # the index: reads annotation files only
    if isinstance(source, DatasetIndex):
        return list(source.classes), source.classes_file
    if isinstance(source, (str, os.PathLike)):
        root = node.root if "root" in node else None  # the dataset's own default: the list's folder
        src = read_source(source, root, "data.train_dataset.records_or_list_file")
        return src.class_names, src.classes_file
    return None, "data.train_dataset.records_or_list_file"


def resolve_num_classes(cfg: DictConfig) -> tuple[int, list[str]]:
    """``(count, names)`` of the training data, checked against ``cfg.data.num_classes`` (null = from the data).

    Builds only what names the classes (the training split's index), never the video datasets.

    Raises:
        ValueError: ``data.num_classes`` disagrees with the data, or neither knows the count.
    """
    names, where = _node_classes(cfg.data.train_dataset)
    return check_num_classes(cfg.data.num_classes, names, where)
