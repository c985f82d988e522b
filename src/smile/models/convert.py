"""State-dict conversion: this project <-> official VideoMAE/SMILE ``.pth`` <-> Hugging Face VideoMAE.

Our module names were chosen to be the official ones (SPEC §4.3), so the official conversion is a
matter of unwrapping (Lightning's ``net.`` prefix, the frozen ``target.*``, ``torch.compile``'s
``_orig_mod.``) and of checking that the key set is exactly the official one. The Hugging Face
``transformers`` layout renames every module and splits the fused ``qkv`` projection into
``query``/``key``/``value`` (the key has no bias, like our constant-zero k bias).

Everything here works on tensor dicts: no files, no ``transformers`` import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from smile.models.layers import LN_EPS

Kind = Literal["pretrain", "finetune"]
StateDict = dict[str, Tensor]

# Wrappers around the student's own names: Lightning module attribute, DDP/DeepSpeed, torch.compile.
WRAPPER_PREFIXES = ("net.", "module.", "_orig_mod.")
BLOCK_KEYS = (
    "norm1.weight",
    "norm1.bias",
    "attn.q_bias",
    "attn.v_bias",
    "attn.qkv.weight",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)
# Our block name -> Hugging Face ``VideoMAELayer`` name (weight and bias alike); qkv is handled apart.
HF_BLOCK_NAMES = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
HF_QKV = ("query", "key", "value")
HF_ATTN = "attention.attention"


def student_state_dict(sd: Mapping[str, Tensor]) -> StateDict:
    """The student's own keys: teacher (``target.*``) dropped, wrapper prefixes stripped."""
    out: StateDict = {}
    for key, value in sd.items():
        if key.startswith("target."):
            continue
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key.replace("._orig_mod.", ".")] = value
    return out


def detect_kind(sd: Mapping[str, Tensor]) -> Kind:
    """``"pretrain"`` (encoder + decoder, SPEC §4.3 first listing) or ``"finetune"`` (classifier)."""
    if "mask_token" in sd or any(k.startswith("encoder.") for k in sd):
        return "pretrain"
    if "patch_embed.proj.weight" in sd:
        return "finetune"
    raise ValueError(f"not a VideoMAE/SMILE state dict: no encoder.* or patch_embed.* key among {sorted(sd)[:8]}")


def count_blocks(sd: Mapping[str, Tensor], prefix: str) -> int:
    """Number of transformer blocks under ``prefix`` (e.g. ``"encoder.blocks."``)."""
    return len({k[len(prefix) :].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def _vit_keys(prefix: str, depth: int, qkv_bias: bool) -> set[str]:
    keys = {f"{prefix}patch_embed.proj.weight", f"{prefix}patch_embed.proj.bias"}
    for i in range(depth):
        keys |= {f"{prefix}blocks.{i}.{k}" for k in BLOCK_KEYS if qkv_bias or "_bias" not in k}
    return keys


def official_keys(kind: Kind, depth: int, decoder_depth: int = 4, qkv_bias: bool = True, head: bool = True) -> set[str]:
    """The exact key set of an official checkpoint (SPEC §4.3) for the given depths.

    Args:
        kind: ``"pretrain"`` (student: encoder, bridge, mask token, decoder) or ``"finetune"``.
        depth: Encoder blocks.
        decoder_depth: Decoder blocks (pretraining only).
        qkv_bias: Whether blocks carry ``q_bias``/``v_bias``.
        head: Whether a classifier carries ``head.*`` (``num_classes > 0``).
    """
    if kind == "finetune":
        keys = _vit_keys("", depth, qkv_bias) | {"fc_norm.weight", "fc_norm.bias"}
        return keys | ({"head.weight", "head.bias"} if head else set())
    keys = _vit_keys("encoder.", depth, qkv_bias) | {"encoder.norm.weight", "encoder.norm.bias"}
    for j in range(decoder_depth):
        keys |= {f"decoder.blocks.{j}.{k}" for k in BLOCK_KEYS if qkv_bias or "_bias" not in k}
    keys |= {f"decoder.{n}.{p}" for n in ("norm", "head") for p in ("weight", "bias")}
    return keys | {"encoder_to_decoder.weight", "mask_token"}


def check_official(sd: Mapping[str, Tensor]) -> Kind:
    """Raise a ``ValueError`` unless ``sd`` has exactly the official key set of its kind; returns the kind."""
    kind = detect_kind(sd)
    enc = "encoder." if kind == "pretrain" else ""
    expected = official_keys(
        kind,
        depth=count_blocks(sd, f"{enc}blocks."),
        decoder_depth=count_blocks(sd, "decoder.blocks."),
        qkv_bias=f"{enc}blocks.0.attn.q_bias" in sd,
        head="head.weight" in sd,
    )
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise ValueError(f"not an official {kind} layout: missing {missing[:8]}, unexpected {unexpected[:8]}")
    return kind


def to_official(sd: Mapping[str, Tensor]) -> StateDict:
    """Our checkpoint's tensors (Lightning ``net.*`` or a bare model state dict) in the official layout.

    The result is what the official code stores under ``{"model": ...}`` and loads with
    ``--finetune`` / ``--first_stage_path``: the pretraining student or the finetuned classifier.
    """
    out = {k: v.detach().clone().contiguous() for k, v in student_state_dict(sd).items()}
    check_official(out)
    return out


def from_official(sd: Mapping[str, Tensor], dtype: torch.dtype = torch.float32) -> StateDict:
    """An official state dict (already unwrapped from ``model``/``module``) as loadable by our models.

    Floating tensors are cast to ``dtype`` (DeepSpeed finetune files hold fp16 weights). A learned
    ``pos_embed`` (not used by any sinusoidal VideoMAE/SMILE model) is refused by the key check.
    """
    out = {k: v.to(dtype) if v.is_floating_point() else v for k, v in student_state_dict(sd).items()}
    check_official(out)
    return out


def _blocks_to_hf(sd: Mapping[str, Tensor], src: str, dst: str, depth: int) -> StateDict:
    """Our blocks ``{src}blocks.i.*`` as HF layers ``{dst}encoder.layer.i.*`` (fused qkv split in three)."""
    out: StateDict = {}
    for i in range(depth):
        ours, hf = f"{src}blocks.{i}.", f"{dst}encoder.layer.{i}."
        for name, hf_name in HF_BLOCK_NAMES.items():
            for p in ("weight", "bias"):
                out[f"{hf}{hf_name}.{p}"] = sd[f"{ours}{name}.{p}"]
        for part, w in zip(HF_QKV, sd[f"{ours}attn.qkv.weight"].chunk(3, dim=0), strict=True):  # 3 x [D, D]
            out[f"{hf}{HF_ATTN}.{part}.weight"] = w.contiguous()
        if f"{ours}attn.q_bias" in sd:
            out[f"{hf}{HF_ATTN}.query.bias"] = sd[f"{ours}attn.q_bias"]
            out[f"{hf}{HF_ATTN}.value.bias"] = sd[f"{ours}attn.v_bias"]
    return out


def _encoder_prefix(sd: Mapping[str, Tensor]) -> tuple[str, bool]:
    """Where the ViT sits (``"encoder."`` in a pretraining student) and whether it is a classifier."""
    src = "encoder." if detect_kind(sd) == "pretrain" else ""
    return src, "fc_norm.weight" in sd


def to_hf(sd: Mapping[str, Tensor]) -> StateDict:
    """Our classifier or pretraining encoder as a Hugging Face VideoMAE state dict.

    A classifier becomes ``VideoMAEForVideoClassification`` (``videomae.*``, ``fc_norm``,
    ``classifier``; ``use_mean_pooling=True``). A pretraining student (or a bare token encoder)
    contributes its encoder only and becomes ``VideoMAEModel`` with ``use_mean_pooling=False``, whose
    final ``layernorm`` is our ``encoder.norm``; decoder, bridge and mask token have no HF
    counterpart and are dropped.
    """
    sd = student_state_dict(sd)
    src, classifier = _encoder_prefix(sd)
    dst = "videomae." if classifier else ""
    out = _blocks_to_hf(sd, src, dst, count_blocks(sd, f"{src}blocks."))
    for p in ("weight", "bias"):
        out[f"{dst}embeddings.patch_embeddings.projection.{p}"] = sd[f"{src}patch_embed.proj.{p}"]
        if not classifier:
            out[f"layernorm.{p}"] = sd[f"{src}norm.{p}"]
            continue
        out[f"fc_norm.{p}"] = sd[f"fc_norm.{p}"]
        if f"head.{p}" in sd:
            out[f"classifier.{p}"] = sd[f"head.{p}"]
    return out


def _modern_bias_names(sd: Mapping[str, Tensor]) -> StateDict:
    """transformers 4.x spelled the attention biases ``q_bias``/``v_bias``; use 5.x's linear biases."""
    out: StateDict = {}
    for key, value in sd.items():
        key = key.replace(f"{HF_ATTN}.q_bias", f"{HF_ATTN}.query.bias")
        out[key.replace(f"{HF_ATTN}.v_bias", f"{HF_ATTN}.value.bias")] = value
    return out


def from_hf(sd: Mapping[str, Tensor]) -> StateDict:
    """The inverse of :func:`to_hf`: a classifier (``videomae.*``) or an encoder (``VideoMAEModel``).

    Accepts both bias spellings (transformers 4 and 5). The encoder comes back with our
    ``VideoViT(global_pool="none")`` names (``patch_embed``, ``blocks``, ``norm``; no ``encoder.``).
    """
    src = "videomae." if any(k.startswith("videomae.") for k in sd) else ""
    sd = _modern_bias_names(sd)
    out: StateDict = {}
    for i in range(count_blocks(sd, f"{src}encoder.layer.")):
        hf, ours = f"{src}encoder.layer.{i}.", f"blocks.{i}."
        for name, hf_name in HF_BLOCK_NAMES.items():
            for p in ("weight", "bias"):
                out[f"{ours}{name}.{p}"] = sd[f"{hf}{hf_name}.{p}"]
        out[f"{ours}attn.qkv.weight"] = torch.cat([sd[f"{hf}{HF_ATTN}.{part}.weight"] for part in HF_QKV])  # [3D, D]
        if f"{hf}{HF_ATTN}.query.bias" in sd:
            out[f"{ours}attn.q_bias"] = sd[f"{hf}{HF_ATTN}.query.bias"]
            out[f"{ours}attn.v_bias"] = sd[f"{hf}{HF_ATTN}.value.bias"]
    names = {f"{src}embeddings.patch_embeddings.projection": "patch_embed.proj", f"{src}layernorm": "norm"}
    names |= {"fc_norm": "fc_norm", "classifier": "head"}
    for hf_name, name in names.items():
        for p in ("weight", "bias"):
            if f"{hf_name}.{p}" in sd:
                out[f"{name}.{p}"] = sd[f"{hf_name}.{p}"]
    return out


def match_hf_names(sd: Mapping[str, Tensor], model_keys: set[str]) -> StateDict:
    """Respell ``query.bias``/``value.bias`` as ``q_bias``/``v_bias`` where the installed model wants that.

    transformers 4.x kept VideoMAE's separate ``q_bias``/``v_bias`` parameters; 5.x uses ordinary
    linear biases (and renames the old spelling on load).
    """
    out: StateDict = {}
    for key, value in sd.items():
        for new, old in (("query.bias", "q_bias"), ("value.bias", "v_bias")):
            legacy = key.replace(f"{HF_ATTN}.{new}", f"{HF_ATTN}.{old}")
            if key not in model_keys and legacy in model_keys:
                key = legacy
        out[key] = value
    return out


def hf_config(sd: Mapping[str, Tensor], *, num_frames: int, img_size: int | tuple[int, int], num_heads: int) -> dict:
    """``VideoMAEConfig`` keyword arguments describing our classifier or pretraining encoder.

    The widths, depth, patch, tubelet and classes are read from the tensors; the clip length, frame
    size and head count are not recoverable from weights (sinusoidal positions, fused heads) and are
    passed in. ``layer_norm_eps`` is ours (1e-6); note that HF's ``fc_norm`` ignores it and uses
    PyTorch's default 1e-5, a small difference in the pooled features of exported classifiers.
    """
    sd = student_state_dict(sd)
    enc, classifier = _encoder_prefix(sd)
    embed_dim, in_chans, tubelet, patch, _ = sd[f"{enc}patch_embed.proj.weight"].shape  # [D, C, t, p, p]
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    kwargs: dict[str, Any] = dict(
        image_size=height if height == width else [height, width],
        patch_size=patch,
        num_channels=in_chans,
        num_frames=num_frames,
        tubelet_size=tubelet,
        hidden_size=embed_dim,
        num_hidden_layers=count_blocks(sd, f"{enc}blocks."),
        num_attention_heads=num_heads,
        intermediate_size=sd[f"{enc}blocks.0.mlp.fc1.weight"].shape[0],
        hidden_act="gelu",  # exact (erf) GELU, as our Mlp
        qkv_bias=f"{enc}blocks.0.attn.q_bias" in sd,
        use_mean_pooling=classifier,
        layer_norm_eps=LN_EPS,
    )
    if classifier:
        kwargs["num_labels"] = sd["head.weight"].shape[0] if "head.weight" in sd else 0
    return kwargs
