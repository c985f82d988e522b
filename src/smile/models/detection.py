"""Spatio-temporal action detection on the video ViT: an AVA RoI head, its detector and its loss.

The recipe follows VideoMAE's AVA finetuning (which builds on AlphAction): encode the whole clip,
average the token map over time, ``roi_align`` each person box on the ``[D, H', W']`` map, max-pool
the aligned cells, dropout, one linear layer to the 80 AVA classes. Person boxes come from an
external detector (or the ground truth at training time), so the model never proposes boxes.

AVA's first 14 classes (AVA ids 1-14, indices 0-13) are body poses (stand, sit, walk, ...): a
person has at most one, so they are trained with a softmax; the other 66 (person-object and
person-person interactions, indices 14-79) co-occur freely and get independent sigmoids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import trunc_normal_
from torch import Tensor, nn
from torchvision.ops import clip_boxes_to_image, roi_align

from smile.models.vit import VideoViT

AVA_NUM_CLASSES = 80
AVA_NUM_POSE = 14  # AVA ids 1-14 -> indices 0-13, mutually exclusive
AVALossMode = Literal["pose_softmax", "sigmoid"]


class AVAHead(nn.Module):
    """RoI head: temporal mean, ``roi_align`` per person box, spatial max pool, dropout, linear.

    Args:
        embed_dim: Token width ``D``.
        num_classes: Action classes (80 for AVA v2.2).
        roi_size: ``roi_align`` output side; 7 as in VideoMAE / AlphAction.
        dropout: Dropout before the classifier; 0.5 as in VideoMAE's AVA config.
        aligned: ``roi_align``'s half-pixel alignment (torchvision's ``aligned=True``); False is the legacy
            sampling of maskrcnn-benchmark's RoIAlign that AlphAction / VideoMAE-Action-Detection use.
        init_std: Std of the classifier's normal init, truncated at 2 std. Small (0.01, as SlowFast's RoI head)
            so the initial logits sit near 0 and the first sigmoid/softmax outputs are uninformative
            instead of saturated; the bias starts at zero for the same reason.
    """

    def __init__(
        self,
        embed_dim: int,
        num_classes: int = AVA_NUM_CLASSES,
        roi_size: int = 7,
        dropout: float = 0.5,
        init_std: float = 0.01,
        aligned: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_classes <= 0 or roi_size <= 0:
            raise ValueError(f"embed_dim, num_classes, roi_size must be > 0: {embed_dim}, {num_classes}, {roi_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.roi_size = roi_size
        self.aligned = aligned
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(embed_dim, num_classes)
        # timm's bounds are absolute (default +-2), so cut at 2 std explicitly
        trunc_normal_(self.fc.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
        nn.init.zeros_(self.fc.bias)

    def pool(
        self,
        tokens: Tensor,
        grid: tuple[int, int, int],
        boxes: Sequence[Tensor],
        clip_size: tuple[int, int],
    ) -> Tensor:
        """Pool one ``[D]`` feature per person box (before dropout and the classifier).

        Args:
            tokens: ``[B, N, D]`` encoder tokens, t-major ``(t, h, w)`` order, ``N = T'H'W'``.
            grid: Token grid ``(T', H', W')``.
            boxes: ``B`` tensors ``[K_i, 4]``: ``(x1, y1, x2, y2)`` in the clip's pixel coordinates.
            clip_size: Clip ``(H, W)`` in pixels; sets the pixel-to-token scale.

        Returns:
            ``[sum K_i, D]`` pooled features, boxes of clip 0 first.
        """
        t, h, w = grid
        batch, num_tokens, _ = tokens.shape
        if num_tokens != t * h * w:
            raise ValueError(f"tokens have N={num_tokens}, grid {grid} needs {t * h * w}")
        if len(boxes) != batch:
            raise ValueError(f"got {len(boxes)} box tensors for a batch of {batch}")
        scale = w / clip_size[1]
        # roi_align takes one scale for both axes, so the tokens must be square in pixels
        if abs(h / clip_size[0] - scale) > 1e-6:
            raise ValueError(f"grid {grid} and clip size {clip_size} give non-square token cells")
        fmap = rearrange(tokens, "b (t h w) d -> b d t h w", t=t, h=h, w=w).mean(dim=2)  # [B, D, H', W']
        rois = [bx.to(dtype=fmap.dtype) for bx in boxes]  # roi_align needs matching dtypes
        # aligned=True: pixel box edges map to continuous map coords (no half-cell shift)
        cells = roi_align(
            fmap, rois, output_size=self.roi_size, spatial_scale=scale, sampling_ratio=0, aligned=self.aligned
        )  # [K, D, r, r]
        return cells.amax(dim=(2, 3))  # [K, D]

    def forward(
        self,
        tokens: Tensor,
        grid: tuple[int, int, int],
        boxes: Sequence[Tensor],
        clip_size: tuple[int, int],
    ) -> Tensor:
        """Classify every person box; arguments as in :meth:`pool`.

        Returns:
            ``[sum K_i, num_classes]`` logits.
        """
        return self.fc(self.dropout(self.pool(tokens, grid, boxes, clip_size)))  # [K, C]


class AVADetector(nn.Module):
    """Video ViT encoder plus :class:`AVAHead`: clip and person boxes in, per-box action logits out.

    The encoder runs in ``global_pool="none"`` mode, which keeps the final ``norm``: the RoI head
    pools raw tokens, so normalising them keeps their scale independent of depth, and it leaves the
    encoder's keys equal to the pretraining encoder's, so a pretraining checkpoint loads directly.

    Args:
        encoder: A :class:`VideoViT` with ``global_pool="none"``.
        head: The RoI head; defaults to ``AVAHead(encoder.embed_dim)``.
    """

    def __init__(self, encoder: VideoViT, head: AVAHead | None = None) -> None:
        super().__init__()
        if encoder.global_pool != "none":
            raise ValueError(f"encoder must have global_pool='none' (token output), got {encoder.global_pool!r}")
        self.encoder = encoder
        self.head = head if head is not None else AVAHead(encoder.embed_dim)

    def forward(self, video: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        """Score every person box of every clip.

        Args:
            video: ``[B, 3, T, H, W]`` clip.
            boxes: ``B`` tensors ``[K_i, 4]`` of ``(x1, y1, x2, y2)`` pixel boxes.

        Returns:
            ``[sum K_i, num_classes]`` logits.
        """
        tokens = self.encoder.forward_features(video)  # [B, N, D]
        clip_size = (video.shape[-2], video.shape[-1])
        grid = self.encoder.patch_embed.grid_of(video)  # the clip's own (AVA evaluates larger frames)
        return self.head(tokens, grid, boxes, clip_size)  # [K, C]


def _check_mode(logits: Tensor, mode: str) -> None:
    if mode not in ("pose_softmax", "sigmoid"):
        raise ValueError(f"mode={mode!r} must be 'pose_softmax' or 'sigmoid'")
    if mode == "pose_softmax" and logits.shape[-1] <= AVA_NUM_POSE:
        raise ValueError(f"pose_softmax needs more than {AVA_NUM_POSE} classes, got {logits.shape[-1]}")


def ava_loss(logits: Tensor, targets: Tensor, mode: AVALossMode = "pose_softmax") -> Tensor:
    """AVA multi-label loss: AlphAction's class split, or VideoMAE-Action-Detection's plain BCE.

    ``"sigmoid"`` is the loss of VideoMAE-Action-Detection (the code behind VideoMAE's AVA numbers):
    BCE over all 80 classes, averaged (VideoMAE multiplies the mean by the number of boxes, which
    AdamW makes nearly irrelevant). ``"pose_softmax"`` uses AlphAction's split of the classes; AlphAction
    itself uses focal losses and weights the terms otherwise (README > Action detection (AVA)).

    ``"pose_softmax"``: softmax cross-entropy over the 14 pose classes (indices 0-13), averaged over
    the persons that have a pose label (a person without one adds no softmax term; a multi-pose
    target is normalised to a distribution), plus sigmoid BCE averaged over all persons and the
    other 66 classes (indices 14-79). The two terms are summed. ``"sigmoid"``: BCE over all classes.

    Args:
        logits: ``[K, C]`` per-box logits.
        targets: ``[K, C]`` multi-hot labels (0/1).
        mode: ``"pose_softmax"`` or ``"sigmoid"``.

    Returns:
        Scalar loss.
    """
    _check_mode(logits, mode)
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    targets = targets.to(dtype=logits.dtype)
    if mode == "sigmoid":
        return F.binary_cross_entropy_with_logits(logits, targets)
    pose_t = targets[:, :AVA_NUM_POSE]  # [K, 14]
    count = pose_t.sum(dim=1)  # [K]
    has_pose = count > 0  # [K]
    log_p = F.log_softmax(logits[:, :AVA_NUM_POSE], dim=1)  # [K, 14]
    dist = pose_t / count.clamp(min=1).unsqueeze(1)  # [K, 14], rows sum to 1 or 0
    per_person = -(dist * log_p).sum(dim=1)  # [K], 0 for persons without a pose
    # mean over posed persons; max(.,1) keeps the graph and gives 0 when nobody has a pose
    pose_loss = per_person.sum() / has_pose.sum().clamp(min=1)
    rest = F.binary_cross_entropy_with_logits(logits[:, AVA_NUM_POSE:], targets[:, AVA_NUM_POSE:])
    return pose_loss + rest


def ava_scores(logits: Tensor, mode: AVALossMode = "pose_softmax") -> Tensor:
    """Per-class detection scores matching :func:`ava_loss`'s training objective.

    Args:
        logits: ``[K, C]`` per-box logits.
        mode: ``"pose_softmax"`` (softmax over the 14 poses, sigmoid over the rest) or ``"sigmoid"``.

    Returns:
        ``[K, C]`` scores in ``[0, 1]``.
    """
    _check_mode(logits, mode)
    if mode == "sigmoid":
        return logits.sigmoid()
    pose = logits[:, :AVA_NUM_POSE].softmax(dim=1)  # [K, 14]
    return torch.cat([pose, logits[:, AVA_NUM_POSE:].sigmoid()], dim=1)  # [K, C]


def jitter_boxes(
    boxes: Tensor, size: tuple[int, int], jitter: Sequence[float], generator: torch.Generator | None = None
) -> Tensor:
    """Training-time box augmentation of VideoMAE-Action-Detection / AlphAction (``random_aug``).

    With ``jitter = (x_out, x_in, y_out, y_in)`` and box size ``w, h``: ``x1 += w * U(-x_out, x_in)``,
    ``x2 += w * U(-x_in, x_out)``, ``y1 += h * U(-y_out, y_in)``, ``y2 += h * U(-y_in, y_out)`` (each edge
    moves out by up to ``*_out`` or in by up to ``*_in`` of the box's size), then clamped into the clip,
    at least one pixel wide and high. The reference measures sizes with the legacy ``+1`` pixel; we do not.

    Args:
        boxes: ``[K, 4]`` clip-pixel ``x1, y1, x2, y2``.
        size: Clip ``(H, W)``.
        jitter: ``(x_out, x_in, y_out, y_in)``; the reference's ``(0.2, 0.1, 0.1, 0.05)``.
        generator: Random source (default: torch's global one, seeded by Lightning).

    Returns:
        ``[K, 4]`` jittered boxes.
    """
    x_out, x_in, y_out, y_in = jitter
    u = torch.rand(boxes.shape, generator=generator, device=boxes.device if generator is None else "cpu")
    u = u.to(boxes)  # [K, 4] in [0, 1)
    low = boxes.new_tensor([-x_out, -y_out, -x_in, -y_in])
    high = boxes.new_tensor([x_in, y_in, x_out, y_out])
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)  # [K, 4]: w h w h
    moved = boxes + wh * (low + u * (high - low))  # [K, 4]
    height, width = size
    x1 = moved[:, 0].clamp(0, width - 1)
    y1 = moved[:, 1].clamp(0, height - 1)
    x2 = torch.maximum(moved[:, 2].clamp(max=width), x1 + 1)
    y2 = torch.maximum(moved[:, 3].clamp(max=height), y1 + 1)
    return torch.stack([x1, y1, x2, y2], dim=1)  # [K, 4]


def extend_boxes(boxes: Tensor, size: tuple[int, int], scale: Sequence[float]) -> Tensor:
    """Evaluation-time box extension of VideoMAE-Action-Detection / AlphAction (``extend``).

    Each box grows by ``scale = (sx, sy)`` of its width / height in total (half on each side), then is
    clipped into the clip: the reference evaluates with ``(0.1, 0.05)``.

    Args:
        boxes: ``[K, 4]`` clip-pixel ``x1, y1, x2, y2``.
        size: Clip ``(H, W)``.
        scale: ``(sx, sy)``.

    Returns:
        ``[K, 4]`` extended boxes.
    """
    pad = (boxes[:, 2:] - boxes[:, :2]) * boxes.new_tensor(list(scale)) / 2  # [K, 2]
    grown = torch.cat([boxes[:, :2] - pad, boxes[:, 2:] + pad], dim=1)  # [K, 4]
    return clip_boxes_to_image(grown, size)
