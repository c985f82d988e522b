"""Named model sizes and the two constructors the rest of the project uses.

``create_pretrain_model`` builds the VideoMAE / SMILE student (encoder + bridge + decoder);
``create_encoder`` builds the mean-pooled classifier used for finetuning and probing. Both check
their arguments (the clip geometry is checked by ``PatchEmbed3D``) and raise a ``ValueError`` that
names the offending key, so a bad Hydra override fails at construction with a readable message
rather than deep inside a forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from smile.models.decoder import VideoMAEDecoder
from smile.models.layers import check_positive
from smile.models.mae import MaskedAutoencoder
from smile.models.vit import GlobalPool, VideoViT


@dataclass(frozen=True)
class ModelSize:
    """Widths and depths of one named size (decoder depth is a separate argument, default 4)."""

    embed_dim: int
    depth: int
    num_heads: int
    decoder_embed_dim: int
    decoder_num_heads: int


MODEL_SIZES: dict[str, ModelSize] = {
    # TEST-ONLY size (not the usual ViT-Ti 192/12/3): small enough for CPU unit tests in seconds.
    "vit_tiny_patch16": ModelSize(32, 2, 2, 16, 2),
    "vit_small_patch16": ModelSize(384, 12, 6, 192, 3),
    "vit_base_patch16": ModelSize(768, 12, 12, 384, 6),
    "vit_large_patch16": ModelSize(1024, 24, 16, 512, 8),
    "vit_huge_patch16": ModelSize(1280, 32, 16, 640, 8),
}

_SIZE_KEYS = frozenset(ModelSize.__dataclass_fields__)
_ENCODER_EXTRA_KEYS = frozenset({"mlp_ratio", "qkv_bias", "in_chans"})


def list_models() -> list[str]:
    """Names accepted by the constructors, smallest first."""
    return list(MODEL_SIZES)


def _resolve_size(name: str, overrides: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Merge the named size with ``overrides``; reject unknown names and keys."""
    if name not in MODEL_SIZES:
        raise ValueError(f"model name={name!r} is unknown; valid names: {', '.join(list_models())}")
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown model override(s) {unknown}; allowed: {sorted(allowed)}")
    return {**asdict(MODEL_SIZES[name]), **overrides}


def _encoder_kwargs(size: dict[str, Any]) -> dict[str, Any]:
    """Drop the decoder fields from a resolved size."""
    return {k: v for k, v in size.items() if not k.startswith("decoder_")}


def create_decoder(
    name: str,
    *,
    out_dim: int,
    depth: int = 4,
    embed_dim: int | None = None,
    num_heads: int | None = None,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    drop_path: float = 0.0,
    use_checkpoint: bool = False,
) -> VideoMAEDecoder:
    """The MAE decoder of a named size (SPEC §4.2): its width and heads unless given.

    Args:
        name: One of ``list_models()``; sets the default width and heads (384 / 6 for ViT-B).
        out_dim: Target width per token: 1536 pixels, 768 CLIP/DINO ViT-B, 384 DINO ViT-S.
        depth: Decoder blocks (4 in every reference script).
        embed_dim: Decoder width; None = the size's.
        num_heads: Decoder heads; None = the size's.
        mlp_ratio: MLP hidden width / width.
        qkv_bias: Learnable q and v biases.
        drop_path: Stochastic depth; the reference passes the encoder's rate to the decoder too.
        use_checkpoint: Activation checkpointing in the blocks.
    """
    size = _resolve_size(name, {}, _SIZE_KEYS)
    check_positive(depth=depth, out_dim=out_dim)
    return VideoMAEDecoder(
        embed_dim=size["decoder_embed_dim"] if embed_dim is None else embed_dim,
        depth=depth,
        num_heads=size["decoder_num_heads"] if num_heads is None else num_heads,
        mlp_ratio=mlp_ratio,
        out_dim=out_dim,
        drop_path=drop_path,
        use_checkpoint=use_checkpoint,
        qkv_bias=qkv_bias,
    )


def create_pretrain_model(
    name: str,
    *,
    num_frames: int = 16,
    img_size: int | tuple[int, int] = 224,
    patch_size: int = 16,
    tubelet_size: int = 2,
    decoder_depth: int = 4,
    target_dim: int = 1536,
    drop_path: float = 0.0,
    use_checkpoint: bool = False,
    **overrides: Any,
) -> MaskedAutoencoder:
    """Build the masked-autoencoder student for a named size (encoder + bridge + decoder).

    Args:
        name: One of ``list_models()``.
        num_frames: Frames per clip.
        img_size: Frame size.
        patch_size: Spatial patch side.
        tubelet_size: Frames per token.
        decoder_depth: Decoder blocks (4 in every reference script).
        target_dim: Decoder output per token: 1536 pixels, 768 CLIP/DINO ViT-B, 384 DINO ViT-S.
        drop_path: Stochastic depth for encoder *and* decoder, as the reference passes it to both.
        use_checkpoint: Activation checkpointing in encoder and decoder blocks.
        **overrides: Any ``ModelSize`` field, or ``mlp_ratio``, ``qkv_bias``, ``in_chans``.
    """
    size = _resolve_size(name, overrides, _SIZE_KEYS | _ENCODER_EXTRA_KEYS)
    check_positive(decoder_depth=decoder_depth, target_dim=target_dim)
    enc_over = {k: v for k, v in overrides.items() if not k.startswith("decoder_")}
    encoder = create_encoder(
        name,
        num_frames=num_frames,
        img_size=img_size,
        patch_size=patch_size,
        tubelet_size=tubelet_size,
        drop_path=drop_path,
        use_checkpoint=use_checkpoint,
        global_pool="none",
        overrides=enc_over,
    )
    decoder = create_decoder(
        name,
        out_dim=target_dim,
        depth=decoder_depth,
        embed_dim=size["decoder_embed_dim"],
        num_heads=size["decoder_num_heads"],
        mlp_ratio=size.get("mlp_ratio", 4.0),
        qkv_bias=size.get("qkv_bias", True),
        drop_path=drop_path,
        use_checkpoint=use_checkpoint,
    )
    return MaskedAutoencoder(encoder, decoder)


def create_encoder(
    name: str,
    *,
    num_classes: int = 0,
    num_frames: int = 16,
    img_size: int | tuple[int, int] = 224,
    patch_size: int = 16,
    tubelet_size: int = 2,
    drop_path: float = 0.1,
    use_checkpoint: bool = False,
    global_pool: GlobalPool = "mean",
    head_init_scale: float = 0.001,
    fc_drop: float = 0.0,
    dynamic_size: bool = False,
    overrides: Mapping[str, Any] | None = None,
    **size: Any,
) -> VideoViT:
    """Build the video ViT of a named size: the classifier (``global_pool="mean"``) or the MAE encoder.

    The classifier's keys match the reference finetune model (``fc_norm`` and ``head``, no
    ``norm``), so a pretraining checkpoint converts by stripping ``encoder.``; the MAE encoder
    (``global_pool="none"``) has the pretraining encoder's keys.

    Args:
        name: One of ``list_models()``.
        num_classes: Classifier outputs; 0 returns pooled ``[B, D]`` features (``mean`` pooling only).
        num_frames: Frames per clip.
        img_size: Frame size.
        patch_size: Spatial patch side.
        tubelet_size: Frames per token.
        drop_path: Final stochastic-depth rate (reference finetuning uses 0.1).
        use_checkpoint: Activation checkpointing in the blocks.
        global_pool: ``"mean"`` for the classifier, ``"none"`` for the pretraining encoder.
        head_init_scale: Multiplier on the classifier's initial weight and bias.
        fc_drop: Dropout before the classifier.
        dynamic_size: Accept any frame size the patches tile, with the position table resized
            (AVA evaluation; see :class:`VideoViT`).
        overrides: Size fields as a mapping (``model.encoder.overrides`` in the configs).
        **size: Size fields as keywords: ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``,
            ``qkv_bias``, ``in_chans``.
    """
    allowed = frozenset(k for k in _SIZE_KEYS if not k.startswith("decoder_")) | _ENCODER_EXTRA_KEYS
    resolved = _resolve_size(name, {**(overrides or {}), **size}, allowed)
    return VideoViT(
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=tubelet_size,
        drop_path=drop_path,
        use_checkpoint=use_checkpoint,
        global_pool=global_pool,
        num_classes=num_classes,
        head_init_scale=head_init_scale,
        fc_drop=fc_drop,
        dynamic_size=dynamic_size,
        **_encoder_kwargs(resolved),
    )
