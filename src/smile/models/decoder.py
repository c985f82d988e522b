"""Lightweight MAE decoder: predicts targets (pixels or teacher features) at masked tokens.

The decoder sees visible tokens and mask tokens together but only its last ``return_token_num``
outputs are projected, because the wrapper (``MaskedAutoencoder``) appends the mask tokens at the
end. Projecting only those saves the head's FLOPs on visible tokens, which carry no loss.
"""

from __future__ import annotations

from torch import Tensor, nn

from smile.models.layers import LN_EPS, Block, check_positive, drop_path_rates, run_blocks


class VideoMAEDecoder(nn.Module):
    """Stack of pre-norm blocks, a final LayerNorm and a linear head.

    Args:
        embed_dim: Decoder width ``Dd``.
        depth: Number of blocks (the reference uses 4 for every size).
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``Dd``.
        out_dim: Target width per token: 1536 for pixels (2*16*16*3), 768 for CLIP ViT-B features.
        drop_path: Final stochastic-depth rate (linear ramp); the reference reuses the encoder's.
        use_checkpoint: Recompute block activations in backward (training only).
        qkv_bias: Learnable q and v biases.
    """

    def __init__(
        self,
        embed_dim: int = 384,
        depth: int = 4,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        out_dim: int = 1536,
        drop_path: float = 0.0,
        use_checkpoint: bool = False,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        check_positive(embed_dim=embed_dim, depth=depth, out_dim=out_dim, mlp_ratio=mlp_ratio)
        self.embed_dim = embed_dim
        self.out_dim = out_dim
        self.use_checkpoint = use_checkpoint
        rates = drop_path_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=r) for r in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, out_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform Linear weights, zero biases, unit LayerNorm (reference pretraining init)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, return_token_num: int) -> Tensor:
        """Decode ``x [B, L, Dd]`` and predict the last ``return_token_num`` tokens.

        Returns:
            ``[B, return_token_num, out_dim]``.
        """
        if not 0 < return_token_num <= x.shape[1]:
            raise ValueError(f"return_token_num={return_token_num} must be in [1, {x.shape[1]}]")
        x = run_blocks(self.blocks, x, checkpoint=self.use_checkpoint and self.training)  # [B, L, Dd]
        x = x[:, -return_token_num:]  # [B, M, Dd]
        return self.head(self.norm(x))  # [B, M, out_dim]
