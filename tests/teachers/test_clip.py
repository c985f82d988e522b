"""CLIP teacher: the three weight-file forms, strict refusal, and the token path against explicit ops.

Everything is offline: one tiny random CLIP-like tower (width 64, 2 layers, 2 heads, patch 16,
32 px) is saved in every supported form under a temporary directory.
"""

from __future__ import annotations

import math
from pathlib import Path

import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from smile.teachers import (
    CLIP_ARCHS,
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CLIPArch,
    CLIPTeacher,
    DINOTeacher,
    build_clip_visual,
    load_clip_visual_state_dict,
)

TINY = CLIPArch(width=64, layers=2, heads=2, patch_size=16, image_size=32)
TINY_L = CLIPArch(width=64, layers=2, heads=2, patch_size=14, image_size=56)  # ViT-L/14-like: 4x4 grid


def _random_tower(spec: CLIPArch, seed: int, output_dim: int | None = 32) -> nn.Module:
    """A tower whose every weight (LayerNorms included) is random, so any skipped load shows."""
    torch.manual_seed(seed)
    visual = build_clip_visual(
        spec.width, spec.layers, spec.heads, spec.patch_size, spec.image_size, output_dim=output_dim
    )
    with torch.no_grad():
        for name, p in visual.named_parameters():
            if "ln_" in name:
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("weight") else 0.0))
    return visual.eval()


class _OpenAIStyle(nn.Module):
    """What the OpenAI archive holds: the tower as ``visual`` next to (here, a stub of) the text tower."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual
        self.token_embedding = nn.Embedding(10, 8)
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def _save_forms(visual: nn.Module, spec: CLIPArch, root: Path) -> dict[str, Path]:
    """The same tower as (a) TorchScript archive, (b) open_clip checkpoints, (c) SMILE extract."""
    root.mkdir(parents=True, exist_ok=True)
    sd = {k: v.clone() for k, v in visual.state_dict().items()}
    assert "proj" in sd
    paths = {name: root / f"{name}.pt" for name in ("jit", "open_clip", "open_clip_ddp", "extract")}

    wrapper = _OpenAIStyle(visual).eval()
    example = torch.randn(1, 3, spec.image_size, spec.image_size)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    torch.jit.save(traced, str(paths["jit"]))

    text = {
        "token_embedding.weight": torch.randn(10, 8),
        "logit_scale": torch.ones([]),
        "text_projection": torch.randn(8, 32),
    }
    full = {**{f"visual.{k}": v for k, v in sd.items()}, **text}
    torch.save({"epoch": 3, "state_dict": full}, paths["open_clip"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.items()}}, paths["open_clip_ddp"])

    extract = {k: v for k, v in sd.items() if k != "proj"}
    extract["conv1.weight"] = extract["conv1.weight"].unsqueeze(2)  # inflated Conv3d (C, 3, 1, p, p)
    torch.save(extract, paths["extract"])
    return paths


pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    visual = _random_tower(TINY, seed=0)
    paths = _save_forms(visual, TINY, tmp_path_factory.mktemp("clip"))
    return visual, paths


def _video(b: int = 2, t: int = 4, h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed))


def _reference_tokens(sd: dict[str, torch.Tensor], img: torch.Tensor, heads: int) -> torch.Tensor:
    """OpenAI CLIP's image tower written out op by op; returns ln_post(all tokens)[:, 1:]."""
    w = sd["conv1.weight"]
    width, p = w.shape[0], w.shape[-1]
    x = F.conv2d(img, w, stride=p).flatten(2).transpose(1, 2)  # [N, L, C]
    x = torch.cat([sd["class_embedding"].expand(x.shape[0], 1, width), x], 1) + sd["positional_embedding"]
    ln = lambda y, name: F.layer_norm(y, (width,), sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-5)
    x = ln(x, "ln_pre")
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    for i in range(layers):
        pre = f"transformer.resblocks.{i}."
        y = ln(x, pre + "ln_1") @ sd[pre + "attn.in_proj_weight"].T + sd[pre + "attn.in_proj_bias"]
        q, k, v = (z.unflatten(-1, (heads, -1)).transpose(1, 2) for z in y.chunk(3, -1))  # [N, h, L, d]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
        att = att.transpose(1, 2).flatten(2)
        x = x + att @ sd[pre + "attn.out_proj.weight"].T + sd[pre + "attn.out_proj.bias"]
        y = ln(x, pre + "ln_2") @ sd[pre + "mlp.c_fc.weight"].T + sd[pre + "mlp.c_fc.bias"]
        y = y * torch.sigmoid(1.702 * y)  # QuickGELU
        x = x + y @ sd[pre + "mlp.c_proj.weight"].T + sd[pre + "mlp.c_proj.bias"]
    return ln(x, "ln_post")[:, 1:]


# -- weight forms ------------------------------------------------------------------------------
def test_all_weight_forms_give_identical_features(tiny):
    visual, paths = tiny
    video = _video()
    feats = {name: CLIPTeacher.from_file(p, arch=TINY)(video) for name, p in paths.items()}
    first = feats["extract"]
    assert first.shape == (2, 2 * 2 * 2, 64)
    for name, f in feats.items():
        assert torch.equal(f, first), name


def test_state_dict_conversion(tiny):
    visual, paths = tiny
    own = {k: v for k, v in visual.state_dict().items() if k != "proj"}
    for name, p in paths.items():
        sd = load_clip_visual_state_dict(p)
        assert set(sd) == set(own), name  # text keys, "proj" and prefixes gone
        assert sd["conv1.weight"].shape == (64, 3, 16, 16)
        for k in own:
            assert torch.equal(sd[k], own[k]), (name, k)


def test_half_precision_file_loads_as_fp32(tiny, tmp_path):
    """The OpenAI archive stores fp16 weights: they load into the fp32 tower (values rounded once)."""
    sd = load_clip_visual_state_dict(tiny[1]["extract"])
    path = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in sd.items()}, path)
    teacher = CLIPTeacher.from_file(path, arch=TINY)
    loaded = teacher.visual.state_dict()
    assert all(v.dtype == torch.float32 for v in loaded.values())
    assert all(torch.equal(loaded[k], v.half().float()) for k, v in sd.items())


def test_partial_file_refused(tiny, tmp_path):
    sd = load_clip_visual_state_dict(tiny[1]["extract"])
    del sd["ln_post.weight"]
    path = tmp_path / "no_ln_post.pt"
    torch.save(sd, path)
    with pytest.raises(ValueError, match="no_ln_post.pt") as err:
        CLIPTeacher.from_file(path, arch=TINY)
    assert "missing keys [ln_post.weight]" in str(err.value)
    assert "ln_post is required" in str(err.value)


def test_unexpected_key_refused(tiny, tmp_path):
    sd = load_clip_visual_state_dict(tiny[1]["extract"])
    sd["temporal_embedding"] = torch.zeros(3)
    path = tmp_path / "extra.pt"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"extra\.pt.*unexpected keys \[temporal_embedding\]"):
        CLIPTeacher.from_file(path, arch=TINY)


def test_mismatched_width_refused(tmp_path):
    narrow = CLIPArch(width=32, layers=2, heads=2, patch_size=16, image_size=32)
    paths = _save_forms(_random_tower(narrow, seed=3), narrow, tmp_path)
    for path in (paths["extract"], paths["open_clip"]):
        with pytest.raises(ValueError) as err:
            CLIPTeacher.from_file(path, arch=TINY)
        msg = str(err.value)
        assert str(path) in msg and "shape mismatches" in msg
        assert "conv1.weight: file (32, 3, 16, 16) vs model (64, 3, 16, 16)" in msg
        assert "positional_embedding" in msg


def test_missing_file_says_how_to_get_it(tmp_path):
    path = tmp_path / "nowhere" / "ViT-B-16.pt"
    with pytest.raises(FileNotFoundError) as err:
        CLIPTeacher.from_file(path)
    msg = str(err.value)
    assert str(path) in msg and "model.teacher.path" in msg
    assert "huggingface.co/fmthoker/SMILE" in msg and 'clip.load("ViT-B/16")' in msg
    with pytest.raises(FileNotFoundError, match="model.teacher.path"):
        CLIPTeacher.from_file(None)


def test_non_weight_file_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="list.pt"):
        CLIPTeacher.from_file(path, arch=TINY)


# -- the token path ----------------------------------------------------------------------------
def test_features_equal_explicit_per_frame_tower(tiny):
    visual, paths = tiny
    teacher = CLIPTeacher.from_file(paths["jit"], arch=TINY)
    sd = {k: v for k, v in visual.state_dict().items()}
    video = _video(b=2, t=6)
    out = teacher(video)
    assert out.shape == (2, 3 * 2 * 2, 64) and out.dtype == torch.float32
    expected = torch.stack(
        [torch.cat([_reference_tokens(sd, video[b, :, t][None], TINY.heads)[0] for t in (0, 2, 4)]) for b in range(2)]
    )  # t-major: frame 0's 4 tokens, then frame 2's, then frame 4's
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)


def test_matches_open_clip_output_tokens(tiny):
    """ln_post on all tokens then drop CLS == open_clip's own ``output_tokens`` tokens."""
    visual, paths = tiny
    teacher = CLIPTeacher.from_file(paths["open_clip"], arch=TINY)
    frames = torch.randn(3, 3, 32, 32)
    visual.output_tokens = True
    try:
        with torch.no_grad():
            _, tokens = visual(frames)
    finally:
        visual.output_tokens = False
    ours = teacher.encode_frames(frames)  # [3, 2, 2, 64]
    torch.testing.assert_close(ours.flatten(1, 2), tokens, atol=1e-6, rtol=1e-6)


def test_input_norm_clip_is_exact_renormalisation(tiny):
    path = tiny[1]["extract"]
    img, clip = (CLIPTeacher.from_file(path, arch=TINY, input_norm=n) for n in ("imagenet", "clip"))
    video = _video()
    shape = (1, 3, 1, 1, 1)
    pixels = video * torch.tensor(IMAGENET_STD).view(shape) + torch.tensor(IMAGENET_MEAN).view(shape)
    renormed = (pixels - torch.tensor(CLIP_MEAN).view(shape)) / torch.tensor(CLIP_STD).view(shape)
    torch.testing.assert_close(clip(video), img(renormed), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(clip(video), img(video), atol=1e-3)
    with pytest.raises(ValueError, match="input_norm"):
        CLIPTeacher.from_file(path, arch=TINY, input_norm="openai")


def test_other_frame_size_resizes_positional_embedding(tiny):
    visual, paths = tiny
    teacher = CLIPTeacher.from_file(paths["extract"], arch=TINY)
    video = _video(b=1, t=2, h=48, w=64)  # 3x4 grid, tower trained at 2x2
    out = teacher(video)
    assert out.shape == (1, 3 * 4, 64)
    sd = dict(visual.state_dict())
    pos = sd["positional_embedding"]
    grid = F.interpolate(
        pos[1:].reshape(1, 2, 2, 64).permute(0, 3, 1, 2), size=(3, 4), mode="bicubic", align_corners=False
    )
    sd["positional_embedding"] = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(12, 64)])
    expected = _reference_tokens(sd, video[:, :, 0], TINY.heads)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)


def test_patch14_grid_resampled_to_student_grid(tmp_path):
    visual = _random_tower(TINY_L, seed=5)
    path = _save_forms(visual, TINY_L, tmp_path)["extract"]
    teacher = CLIPTeacher.from_file(path, arch=TINY_L)
    assert teacher.tower_patch_size == 14 and teacher.patch_size == 16
    video = _video(b=2, t=4, h=56, w=56)
    out = teacher(video)  # tower grid 4x4 -> student grid 56//16 = 3x3
    assert out.shape == (2, 2 * 3 * 3, 64)
    frames = video[:, :, ::2].transpose(1, 2).flatten(0, 1)  # [(b t), 3, 56, 56]
    native = _reference_tokens(dict(visual.state_dict()), frames, TINY_L.heads)  # [(b t), 16, C]
    native = native.reshape(4, 4, 4, 64).permute(0, 3, 1, 2)
    expected = F.interpolate(native, size=(3, 3), mode="bilinear", align_corners=False)
    expected = expected.permute(0, 2, 3, 1).reshape(2, 2 * 9, 64)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)
    fixed = CLIPTeacher.from_file(path, arch=TINY_L, student_grid=(2, 2))
    assert fixed(video).shape == (2, 2 * 4, 64)


def test_named_archs_match_open_clip_configs():
    for name, spec in CLIP_ARCHS.items():
        vision = open_clip.get_model_config(name)["vision_cfg"]
        assert (spec.width, spec.layers, spec.patch_size, spec.image_size) == (
            vision["width"],
            vision["layers"],
            vision["patch_size"],
            vision["image_size"],
        )
        assert spec.heads == spec.width // 64 and spec.quick_gelu


def test_vit_b16_keys_and_shapes_are_openai():
    spec = CLIP_ARCHS["ViT-B-16"]
    sd = build_clip_visual(spec.width, spec.layers, spec.heads, spec.patch_size, spec.image_size).state_dict()
    assert sd["positional_embedding"].shape == (197, 768)
    assert sd["conv1.weight"].shape == (768, 3, 16, 16)
    assert sd["transformer.resblocks.11.attn.in_proj_weight"].shape == (3 * 768, 768)
    assert {"ln_post.weight", "ln_post.bias", "class_embedding"} <= set(sd) and "proj" not in sd


# -- frozen teacher behaviour ------------------------------------------------------------------
def test_frozen_eval_and_fp32_inside_autocast(tiny):
    teacher = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY)
    parent = nn.Sequential(teacher).train()
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    video = _video().requires_grad_(True)
    ref = teacher(video)
    assert not ref.requires_grad
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = teacher(video)  # dtype=None disables the outer autocast: exact fp32
    assert torch.equal(inside, ref) and parent is not None


def test_bf16_option_runs_close(tiny):
    teacher = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY, dtype="bf16")
    ref = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY)
    video = _video()
    out = teacher(video)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref(video), atol=0.15, rtol=0.05)


def test_frame_count_must_divide_stride(tiny):
    teacher = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY)
    with pytest.raises(ValueError, match="frame_stride"):
        teacher(_video(t=3))


# -- the TorchScript archive is read without running it ---------------------------------------
def _refuse_jit_load(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load runs the archive's code; it must not be called")

    monkeypatch.setattr(torch.jit, "load", refuse)


def test_openai_archive_is_read_without_torch_jit_load(tiny, monkeypatch):
    visual, paths = tiny
    expected = {k.removeprefix("visual."): v for k, v in torch.jit.load(str(paths["jit"])).state_dict().items()}
    _refuse_jit_load(monkeypatch)
    sd = load_clip_visual_state_dict(paths["jit"])
    assert set(sd) == set(visual.state_dict()) - {"proj"}
    assert all(torch.equal(sd[k], expected[k]) and sd[k].dtype == expected[k].dtype for k in sd)
    video = _video()
    torch.testing.assert_close(
        CLIPTeacher.from_file(paths["jit"], arch=TINY)(video), CLIPTeacher.from_file(paths["extract"], arch=TINY)(video)
    )


# -- fp32 means fp32: no TF32 inside an fp32 teacher's forward -----------------------------------
def _precision_seen(teacher: nn.Module, module: nn.Module, video: torch.Tensor) -> list[tuple[str, bool]]:
    """(matmul precision, cuDNN allow_tf32) read inside ``module``'s forward during ``teacher(video)``."""
    seen: list[tuple[str, bool]] = []
    hook = module.register_forward_pre_hook(
        lambda *_: seen.append((torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32))
    )
    try:
        teacher(video)
    finally:
        hook.remove()
    return seen


@pytest.fixture
def high_precision():
    """The global state ``train.py`` sets on CUDA (matmul ``high``; cuDNN TF32 allowed), restored after."""
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    yield
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cudnn.allow_tf32 = before[1]


def _tiny_dino() -> DINOTeacher:
    torch.manual_seed(0)
    vit = timm.create_model(
        "vit_small_patch16_224", pretrained=False, num_classes=0, img_size=32, depth=1, embed_dim=32, num_heads=2
    )
    return DINOTeacher(vit)


def test_fp32_teacher_runs_at_highest_precision_and_restores(tiny, high_precision):
    clip32 = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY, dtype="fp32")
    clip16 = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY, dtype="bf16")
    dino32, dino16 = _tiny_dino(), _tiny_dino()
    dino16.dtype = torch.bfloat16
    video = _video()
    for teacher, inner in ((clip32, clip32.visual.conv1), (dino32, dino32.model.patch_embed)):
        assert _precision_seen(teacher, inner, video) == [("highest", False)]
        assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("high", True)
    for teacher, inner in ((clip16, clip16.visual.conv1), (dino16, dino16.model.patch_embed)):
        assert _precision_seen(teacher, inner, video) == [("high", True)]  # bf16: the global setting


def test_fp32_precision_is_restored_when_the_forward_raises(tiny, high_precision):
    teacher = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY)
    hook = teacher.visual.ln_pre.register_forward_pre_hook(lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        teacher(_video())
    hook.remove()
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("high", True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp32_teacher_on_cuda_observes_highest_precision(tiny, high_precision):
    teacher = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY).cuda()
    video = _video().cuda()
    assert _precision_seen(teacher, teacher.visual.transformer, video) == [("highest", False)]
    assert torch.backends.cuda.matmul.allow_tf32 is True  # restored: "high" = TF32 matmuls again
    ref = CLIPTeacher.from_file(tiny[1]["extract"], arch=TINY)(_video())  # CPU fp32
    torch.testing.assert_close(teacher(video).cpu(), ref, atol=1e-4, rtol=1e-4)
