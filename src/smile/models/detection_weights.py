"""Initialising an AVA detector from any checkpoint of the encoder: pretraining, classifier or detector.

The detector's encoder is the token encoder (``global_pool="none"``): ``patch_embed``, ``blocks`` and the
final ``norm``, no ``fc_norm`` / ``head``. Accepted files (read by
:func:`~smile.models.checkpoint.read_state_dict`, so Lightning ``.ckpt`` and official ``.pth`` alike):

* this project's pretraining ``.ckpt`` (``net.encoder.*``; decoder, bridge and teacher are ignored) and
  the official VideoMAE/SMILE pretraining ``.pth`` (``encoder.*`` under ``model``): ``norm`` loads as is;
* this project's classifier ``.ckpt`` (``net.*`` with ``fc_norm`` / ``head``) and official finetuned
  ``.pth`` (``blocks.*``, ``fc_norm``, ``head`` under ``model`` or ``module``, possibly fp16): these have
  no ``norm``. The finetuned model normalises the *pooled* token with ``fc_norm``; the detector
  normalises every token before pooling, and ``fc_norm``'s affine is the nearest trained equivalent, so
  it initialises ``norm``. The classifier ``head`` is dropped (reported as unexpected);
* this project's detection ``.ckpt`` (``net.encoder.*`` and ``net.head.*``) or a detector's bare state
  dict: the RoI head loads too.

Without a head in the file the RoI head keeps its fresh initialisation; any other missing tensor, and any
shape mismatch, is a :class:`~smile.models.checkpoint.CheckpointError`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from smile.models.checkpoint import CheckpointError, LoadReport, check_fit, read_state_dict, strip_prefix
from smile.models.detection import AVADetector

log = logging.getLogger(__name__)


def _module_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys as the saved module names them: DDP's ``module.`` and Lightning's ``net.`` removed, teacher dropped."""
    sd = strip_prefix({k: v for k, v in sd.items() if not k.startswith("target.")}, ("module.",))
    if any(k.startswith("net.") for k in sd):  # a Lightning checkpoint: the model is `net`
        sd = {k[len("net.") :]: v for k, v in sd.items() if k.startswith("net.")}
    return sd


def detector_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The detector's view of a checkpoint: ``encoder.*`` (and ``head.*`` when the file has the RoI head).

    Args:
        sd: A checkpoint's tensors (any of the layouts of the module docstring).

    Returns:
        Detector-level keys; a classifier's ``fc_norm`` is also copied to ``encoder.norm``.
    """
    sd = _module_keys(sd)
    if any(k.startswith("encoder.") for k in sd):  # pretraining model or detector: encoder (+ RoI head)
        encoder = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
        head = {k[len("head.") :]: v for k, v in sd.items() if k.startswith("head.")}
    else:  # a classifier: the ViT's own keys, its head is the classifier's
        encoder, head = dict(sd), {}
    if "norm.weight" not in encoder and "fc_norm.weight" in encoder:
        log.info("no final norm in the checkpoint: the encoder's norm starts from the classifier's fc_norm")
        encoder["norm.weight"] = encoder["fc_norm.weight"]
        if "fc_norm.bias" in encoder:
            encoder["norm.bias"] = encoder["fc_norm.bias"]
    return {**{f"encoder.{k}": v for k, v in encoder.items()}, **{f"head.{k}": v for k, v in head.items()}}


def load_detector_weights(detector: AVADetector, path: str | Path) -> LoadReport:
    """Initialise ``detector`` (its encoder, and its RoI head when the file has one) from ``path``.

    Args:
        detector: The detector to fill.
        path: A pretraining, classifier or detection checkpoint, this project's or official.

    Returns:
        What was loaded, with detector-level names (``encoder.blocks.0...``, ``head.fc.weight``);
        ``unexpected`` lists the file's tensors the detector has no place for (a classifier's
        ``fc_norm`` / ``head``).

    Raises:
        CheckpointError: on a shape mismatch (naming the tensors), or when an encoder tensor (or, in a
            file with a RoI head, a head tensor) is missing from the file (naming samples of keys).
    """
    sd = detector_state_dict(read_state_dict(path))
    own = detector.state_dict()
    mismatched = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        details = "; ".join(f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched[:10])
        raise CheckpointError(
            f"{path}: shape mismatch for {len(mismatched)} tensor(s): {details}. The detector's geometry "
            "(model.encoder: patch_size, tubelet_size, width) and head (model.head.num_classes) must match the file"
        )
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items()}
    result = detector.load_state_dict(sd, strict=False)
    report = LoadReport(
        str(path), sorted(set(sd) & set(own)), sorted(result.missing_keys), sorted(result.unexpected_keys)
    )
    log.info("%s", report)
    headless = not any(k.startswith("head.") for k in sd)  # no RoI head in the file: a fresh one
    allowed = {k for k in own if k.startswith("head.")} if headless else set()
    check_fit(report, sd, own, allowed, what="a pretraining, classifier or detection checkpoint of this encoder")
    return report
