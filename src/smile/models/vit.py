"""Video Vision Transformer: one class for masked pretraining, finetuning and probing.

``global_pool="none"`` is the MAE encoder (final ``norm``, token output, visible tokens only);
``global_pool="mean"`` is the classifier (no ``norm``; ``fc_norm`` on the token mean, then
``head``). The two modes reproduce the key sets of the reference's pretrain encoder and finetune
model (SPEC §4.3), so an official checkpoint loads into either with ``strict=True`` once the
``encoder.`` prefix is handled.
"""

from __future__ import annotations

from typing import Literal

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn

from smile.models.layers import LN_EPS, Block, PatchEmbed3D, check_positive, drop_path_rates, run_blocks
from smile.models.pos_embed import interpolated_table, sinusoid_table

GlobalPool = Literal["none", "mean"]


def check_mask(mask: Tensor, batch: int, num_patches: int) -> None:
    """Validate a token mask: bool ``[B, N]``, ``True`` = masked, same masked count in every row.

    The equal-count check needs the values, which would force a host sync on an accelerator (and a
    graph break under ``torch.compile``), so it runs on eager CPU tensors only; the masking
    generators guarantee exact counts by construction.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = masked), got dtype {mask.dtype}")
    if tuple(mask.shape) != (batch, num_patches):
        raise ValueError(f"mask must have shape [B, N]=({batch}, {num_patches}), got {tuple(mask.shape)}")
    if mask.device.type == "cpu" and batch > 0 and not torch.compiler.is_compiling():
        counts = mask.sum(dim=1)  # [B]
        if not bool((counts == counts[0]).all()):
            raise ValueError(f"every sample must mask the same number of tokens, got {counts.tolist()}")


class VideoViT(nn.Module):
    """ViT over spatio-temporal tubelets with a fixed sinusoidal position table and no CLS token.

    Args:
        img_size: Frame size (int or ``(H, W)``).
        patch_size: Spatial patch side.
        num_frames: Frames per clip.
        tubelet_size: Frames per token.
        in_chans: Input channels.
        embed_dim: Token width ``D``.
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        qkv_bias: Learnable q and v biases (the reference always uses them).
        drop_path: Final stochastic-depth rate (linear ramp over blocks).
        use_checkpoint: Recompute block activations in backward to save memory (training only).
        num_classes: Classifier outputs; 0 keeps ``head`` an Identity (probing / features).
        global_pool: ``"none"`` for the MAE encoder, ``"mean"`` for classification.
        head_init_scale: Multiplier on the classifier's initial weight and bias (finetune recipe).
        fc_drop: Dropout before the classifier.
        dynamic_size: Accept frames of any size the patches tile (not only ``img_size``): the
            position table of ``img_size``'s grid is resized bicubically per time slot to the frames'
            grid (:func:`~smile.models.pos_embed.interpolated_table`), as VideoMAE-Action-Detection
            evaluates AVA on full 256 px frames with the 224 px table. Token masks need ``img_size``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        num_frames: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        use_checkpoint: bool = False,
        num_classes: int = 0,
        global_pool: GlobalPool = "none",
        head_init_scale: float = 0.001,
        fc_drop: float = 0.0,
        dynamic_size: bool = False,
    ) -> None:
        super().__init__()
        self._check_args(depth, mlp_ratio, num_classes, global_pool, fc_drop)
        self.global_pool = global_pool
        self.use_checkpoint = use_checkpoint
        self.num_classes = num_classes
        self.patch_embed = PatchEmbed3D(
            img_size, patch_size, num_frames, tubelet_size, in_chans, embed_dim, dynamic_size=dynamic_size
        )
        # [1, N, D]; fixed, recomputable, so not saved (official checkpoints have no pos_embed key)
        self.register_buffer("pos_embed", sinusoid_table(self.num_patches, embed_dim), persistent=False)
        self._resized_tables: dict[tuple[tuple[int, int, int], str], Tensor] = {}  # dynamic_size: per grid, device
        rates = drop_path_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=r) for r in rates
        )
        if global_pool == "none":
            self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        else:
            self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
            self.fc_dropout = nn.Dropout(fc_drop) if fc_drop > 0 else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(head_init_scale)

    def position_table(self, grid: tuple[int, int, int]) -> Tensor:
        """``[1, N, D]`` position table of a token grid: the buffer for ``img_size``'s, else it resized."""
        if grid == self.grid:
            return self.get_buffer("pos_embed")
        device = self.patch_embed.proj.weight.device
        key = (grid, str(device))
        if key not in self._resized_tables:  # computed once per size on the CPU like the buffer, kept on the device
            self._resized_tables[key] = interpolated_table(grid, self.grid, self.embed_dim).to(device)
        return self._resized_tables[key]

    @staticmethod
    def _check_args(depth: int, mlp_ratio: float, num_classes: int, global_pool: str, fc_drop: float) -> None:
        check_positive(depth=depth, mlp_ratio=mlp_ratio)
        if global_pool not in ("none", "mean"):
            raise ValueError(f"global_pool={global_pool!r} must be 'none' or 'mean'")
        if num_classes < 0:
            raise ValueError(f"num_classes={num_classes} must be >= 0")
        if num_classes > 0 and global_pool == "none":
            raise ValueError(f"num_classes={num_classes} needs global_pool='mean' (tokens have no classifier)")
        if not 0.0 <= fc_drop < 1.0:
            raise ValueError(f"fc_drop={fc_drop} must be in [0, 1)")

    def _init_weights(self, head_init_scale: float) -> None:
        """Reference init: Xavier for the MAE encoder, trunc-normal + scaled head for finetuning.

        Conv3d keeps PyTorch's default init, and ``q_bias``/``v_bias`` stay zero, as in the reference.
        """
        pretrain = self.global_pool == "none"
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if pretrain:
                    nn.init.xavier_uniform_(m.weight)
                else:
                    trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if isinstance(self.head, nn.Linear):
            with torch.no_grad():
                self.head.weight.mul_(head_init_scale)
                self.head.bias.mul_(head_init_scale)

    @property
    def num_patches(self) -> int:
        """Tokens per clip, ``N = t * h * w``."""
        return self.patch_embed.num_patches

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid ``(t, h, w)``; masks flatten it t-major."""
        return self.patch_embed.grid

    @property
    def embed_dim(self) -> int:
        """Token width ``D``."""
        return self.patch_embed.embed_dim

    def forward_features(self, video: Tensor, mask: Tensor | None = None) -> Tensor:
        """Encode the visible tokens of a clip.

        Args:
            video: ``[B, C, T, H, W]`` float clip.
            mask: Optional bool ``[B, N]``, ``True`` = masked (dropped before the blocks).

        Returns:
            ``[B, N_vis, D]`` tokens in ascending token order (``N_vis = N`` without a mask),
            after the final ``norm`` in pretraining mode.
        """
        grid = self.patch_embed.grid_of(video)
        x = self.patch_embed(video)  # [B, N, D]
        x = x + self.position_table(grid).to(dtype=x.dtype)  # [B, N, D]
        batch, _, dim = x.shape
        if mask is not None:
            check_mask(mask, batch, self.num_patches)
            x = x[~mask].reshape(batch, -1, dim)  # [B, N_vis, D], ascending order
        x = run_blocks(self.blocks, x, checkpoint=self.use_checkpoint and self.training)
        if self.global_pool == "none":
            x = self.norm(x)
        return x

    def forward(self, video: Tensor, mask: Tensor | None = None) -> Tensor:
        """Classify a clip (``global_pool="mean"``) or return its tokens (``"none"``).

        Returns:
            ``[B, num_classes]`` logits (``[B, D]`` pooled features when ``num_classes=0``) in mean
            mode; ``[B, N_vis, D]`` tokens in ``"none"`` mode.
        """
        x = self.forward_features(video, mask)  # [B, N_vis, D]
        if self.global_pool == "mean":
            x = self.fc_dropout(self.fc_norm(x.mean(dim=1)))  # [B, D]
        return self.head(x)
