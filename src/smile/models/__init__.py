"""Pure ``nn.Module`` models: the video ViT, the MAE decoder and the masked autoencoder.

Parameter names match official VideoMAE / SMILE checkpoints (SPEC §4.3). This package imports
only torch, numpy, einops and timm: no Lightning, no Hydra.
"""

from smile.models.checkpoint import LoadReport, load_encoder_weights, load_student_weights, read_state_dict
from smile.models.decoder import VideoMAEDecoder
from smile.models.factory import (
    MODEL_SIZES,
    ModelSize,
    create_decoder,
    create_encoder,
    create_pretrain_model,
    list_models,
)
from smile.models.layers import Attention, Block, Mlp, PatchEmbed3D
from smile.models.mae import MaskedAutoencoder
from smile.models.pos_embed import sinusoid_table
from smile.models.vit import VideoViT, check_mask

__all__ = [
    "MODEL_SIZES",
    "Attention",
    "Block",
    "LoadReport",
    "MaskedAutoencoder",
    "Mlp",
    "ModelSize",
    "PatchEmbed3D",
    "VideoMAEDecoder",
    "VideoViT",
    "check_mask",
    "create_decoder",
    "create_encoder",
    "create_pretrain_model",
    "list_models",
    "load_encoder_weights",
    "load_student_weights",
    "read_state_dict",
    "sinusoid_table",
]
