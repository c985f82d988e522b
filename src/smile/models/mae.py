"""Masked autoencoder: encoder on visible tokens, linear bridge, decoder on all positions.

Attribute names (``encoder``, ``decoder``, ``encoder_to_decoder``, ``mask_token``) match the
official VideoMAE / SMILE pretraining checkpoints (SPEC §4.3), which therefore load strictly.
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn

from smile.models.decoder import VideoMAEDecoder
from smile.models.pos_embed import sinusoid_table
from smile.models.vit import VideoViT, check_mask


class MaskedAutoencoder(nn.Module):
    """VideoMAE / SMILE student: predicts per-token targets at the masked positions.

    The decoder input is ``[visible tokens, mask tokens]`` (each in ascending token order) instead
    of a full unshuffled sequence: attention is permutation-equivariant given the position table,
    so this equals the unshuffled form and avoids a scatter. The output rows are the masked tokens
    in ascending index order, i.e. they line up with ``target[mask].reshape(B, -1, C)``.

    Args:
        encoder: A ``VideoViT`` with ``global_pool="none"``.
        decoder: The decoder whose width sets the bridge and the mask token.
    """

    decoder_pos_embed: Tensor  # buffer [1, N, Dd]

    def __init__(self, encoder: VideoViT, decoder: VideoMAEDecoder) -> None:
        super().__init__()
        if encoder.global_pool != "none":
            raise ValueError(f"encoder.global_pool={encoder.global_pool!r} must be 'none' for pretraining")
        self.encoder = encoder
        self.decoder = decoder
        dec_dim = decoder.embed_dim
        # PyTorch's default Linear init (kaiming-uniform, a=sqrt(5): std 1/sqrt(3 * D_in)), as the
        # reference, whose top-level model never re-initialises the bridge (ViT-B: std 0.021, not
        # Xavier's 0.042). Only from-scratch runs see it; checkpoints overwrite it.
        self.encoder_to_decoder = nn.Linear(encoder.embed_dim, dec_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))  # [1, 1, Dd]
        trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)  # truncated at ±1 std, as the reference
        # [1, N, Dd]; fixed and recomputable, so not saved (absent from official checkpoints)
        table = sinusoid_table(encoder.num_patches, dec_dim)
        self.register_buffer("decoder_pos_embed", table, persistent=False)

    @property
    def num_patches(self) -> int:
        """Tokens per clip ``N``; masks must be ``[B, N]``."""
        return self.encoder.num_patches

    def forward(self, video: Tensor, mask: Tensor) -> Tensor:
        """Predict targets for the masked tokens.

        Args:
            video: ``[B, C, T, H, W]`` float clip.
            mask: bool ``[B, N]``, ``True`` = masked; every row masks the same number of tokens.

        Returns:
            ``[B, N_masked, out_dim]`` in ascending masked-token order.
        """
        if not isinstance(mask, Tensor):
            raise ValueError(f"mask must be a bool tensor [B, N], got {type(mask).__name__}")
        batch = video.shape[0]
        check_mask(mask, batch, self.num_patches)
        x_vis = self.encoder.forward_features(video, mask)  # [B, N_vis, D]
        x_vis = self.encoder_to_decoder(x_vis)  # [B, N_vis, Dd]
        dim = x_vis.shape[-1]
        pos = self.decoder_pos_embed.to(dtype=x_vis.dtype).expand(batch, -1, -1)  # [B, N, Dd]
        pos_vis = pos[~mask].reshape(batch, -1, dim)  # [B, N_vis, Dd]
        pos_mask = pos[mask].reshape(batch, -1, dim)  # [B, N_masked, Dd]
        x = torch.cat([x_vis + pos_vis, self.mask_token + pos_mask], dim=1)  # [B, N, Dd]
        return self.decoder(x, pos_mask.shape[1])  # [B, N_masked, out_dim]
