"""DetectionLitModule: training reaches every weight (also without boxes), detections and frame-mAP are exact."""

from __future__ import annotations

import functools
import logging
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from smile.lit import DetectionLitModule
from smile.lit.optim import WarmupCosine
from smile.metrics.ava import evaluate_ava
from smile.metrics.detections import write_detections_csv
from smile.models import create_encoder
from smile.models.detection import AVADetector, AVAHead, ava_loss, ava_scores, extend_boxes

FRAMES, H, W = 4, 32, 48  # a non-square clip: token grid 2 x 2 x 3
LABELMAP = {1: "bend/bow", 12: "stand", 80: "watch (a person)"}


def _detector(seed: int = 0) -> AVADetector:
    torch.manual_seed(seed)
    enc = create_encoder("vit_tiny_patch16", num_frames=FRAMES, img_size=(H, W), global_pool="none", drop_path=0.0)
    return AVADetector(enc, AVAHead(enc.embed_dim, dropout=0.0))


def _module(net: AVADetector | None = None, **kw: Any) -> DetectionLitModule:
    opt = functools.partial(torch.optim.AdamW, lr=0.256, weight_decay=0.05, betas=(0.9, 0.999), fused=None)
    return DetectionLitModule(net or _detector(), opt, WarmupCosine(min_lr=0.0, warmup_steps=0), batch_size=2, **kw)


def _item(seed: int, video_id: str, second: int, boxes: list[list[float]], actions: list[list[int]]) -> dict:
    """One keyframe in the batch contract (video already float, as after the data module's transfer hook)."""
    gen = torch.Generator().manual_seed(seed)
    pix = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)  # [K, 4] clip pixels
    labels = torch.zeros(len(pix), 80)
    for k, ids in enumerate(actions):
        labels[k, torch.tensor(ids) - 1] = 1.0
    return {
        "video": torch.randn(3, FRAMES, H, W, generator=gen),
        "boxes": pix,
        "labels": labels,
        "norm_boxes": pix / torch.tensor([W, H, W, H]),
        "box_scores": 0.95 - 0.1 * torch.arange(len(pix), dtype=torch.float32),  # [K] detector scores
        "video_id": video_id,
        "timestamp": second,
    }


def collate(items: list[dict]) -> dict[str, Any]:
    return {
        "video": torch.stack([it["video"] for it in items]),
        **{k: [it[k] for it in items] for k in ("boxes", "labels", "norm_boxes", "box_scores", "video_id")},
        "timestamp": torch.tensor([it["timestamp"] for it in items], dtype=torch.int64),
    }


KEYFRAMES = [
    _item(0, "vidA", 902, [[0, 0, 24, 32], [24, 8, 48, 32]], [[12, 80], [1]]),
    _item(1, "vidA", 903, [[8, 4, 40, 28]], [[12]]),
    _item(2, "vidB", 902, [], []),  # nobody in this keyframe: the batch still trains
    _item(3, "vidB", 904, [[0, 0, 48, 32], [4, 4, 20, 20]], [[1, 80], [12]]),
]
NUM_BOXES = 5


def _loader(items: list[dict], batch: int = 2) -> DataLoader:
    return DataLoader(items, batch_size=batch, collate_fn=collate)


def _trainer(steps: int = 2, callbacks: list | None = None) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=callbacks or [],
    )  # fmt: skip


class Grads(Callback):
    """The gradients of the first optimizer step and the logged losses."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor | None] = {}
        self.losses: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self.grads:
            self.grads = {n: None if p.grad is None else p.grad.clone() for n, p in pl_module.net.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def _full_loss(net: AVADetector) -> float:
    batch = collate(KEYFRAMES)
    with torch.no_grad():
        loss = float(ava_loss(net.eval()(batch["video"], batch["boxes"]), torch.cat(batch["labels"])))
    net.train()
    return loss


NO_VAL = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")


@NO_VAL
def test_training_reaches_encoder_and_head_and_lowers_the_loss():
    module, grads = _module(), Grads()
    before = _full_loss(module.net)
    _trainer(40, [grads]).fit(module, _loader(KEYFRAMES))
    assert len(grads.losses) == 40
    assert all(g is not None for g in grads.grads.values())  # every weight is in the graph
    for name in ("encoder.patch_embed.proj.weight", "encoder.blocks.0.attn.qkv.weight", "encoder.norm.weight"):
        assert grads.grads[name].abs().sum() > 0, name  # type: ignore[union-attr]
    assert grads.grads["head.fc.weight"].abs().sum() > 0  # type: ignore[union-attr]
    assert _full_loss(module.net) < 0.5 * before


@NO_VAL
def test_batch_without_boxes_gives_zero_loss_and_zero_gradients():
    empty = [_item(5, "vidC", 902, [], []), _item(6, "vidC", 903, [], [])]
    for mode in ("pose_softmax", "sigmoid"):
        module, grads = _module(loss_mode=mode), Grads()
        _trainer(2, [grads]).fit(module, _loader(empty))
        assert grads.losses == [0.0, 0.0]
        assert all(g is not None and not g.any() for g in grads.grads.values())  # zeros, but every rank backwards
        assert module.nonfinite.total == 0


def _eval_datamodule(tmp_path, items: list[dict], excluded: list[str] | None = None) -> L.LightningDataModule:
    """A data module like AvaDataModule for evaluation: loaders plus ``eval_files``."""
    (tmp_path / "labelmap.pbtxt").write_text("".join(f'item {{ name: "{n}" id: {i} }}\n' for i, n in LABELMAP.items()))
    gt = [
        f"{it['video_id']},{it['timestamp']:04d},{','.join(f'{v:.3f}' for v in box.tolist())},{a},{k}\n"
        for it in KEYFRAMES
        for k, (box, lab) in enumerate(zip(it["norm_boxes"], it["labels"], strict=True))
        for a in (lab.nonzero().flatten() + 1).tolist()
    ]
    (tmp_path / "gt.csv").write_text("".join(gt))
    if excluded is not None:
        (tmp_path / "excluded.csv").write_text("".join(line + "\n" for line in excluded))
    dm = L.LightningDataModule()
    dm.val_dataloader = lambda: _loader(items)  # type: ignore[method-assign]
    dm.test_dataloader = lambda: _loader(items, batch=3)  # type: ignore[method-assign]
    dm.eval_files = SimpleNamespace(  # type: ignore[attr-defined]
        label_map=tmp_path / "labelmap.pbtxt",
        groundtruth=tmp_path / "gt.csv",
        excluded=None if excluded is None else tmp_path / "excluded.csv",
    )
    return dm


def _expected_rows(net: AVADetector, score_with_box: bool = True, extend: tuple | None = None) -> list[tuple]:
    """The rows by hand: each keyframe once, every box, the label map's classes ascending; action scores
    times the box's detector score (VideoMAE-Action-Detection) unless ``score_with_box`` is false."""
    rows = []
    net.eval()
    with torch.no_grad():
        for it in KEYFRAMES:
            boxes = it["boxes"] if extend is None else extend_boxes(it["boxes"], (H, W), extend)
            scores = ava_scores(net(it["video"][None], [boxes]), "pose_softmax")  # [K, 80]
            if score_with_box:
                scores = scores * it["box_scores"][:, None]
            for box, score in zip(it["norm_boxes"], scores, strict=True):
                coords = [float(str(v)) for v in box.numpy()]  # float32 -> its shortest decimal
                rows += [
                    (it["video_id"], it["timestamp"], *coords, c, float(str(score[c - 1].numpy()))) for c in LABELMAP
                ]
    return rows


def test_validation_and_test_rows_and_map_are_exact(tmp_path):
    module = _module()
    items = [*KEYFRAMES, KEYFRAMES[0], KEYFRAMES[3]]  # two keyframes seen twice (a padded last round)
    dm = _eval_datamodule(tmp_path, items, excluded=["vidB,0904"])
    trainer = _trainer()
    trainer.validate(module, datamodule=dm, verbose=False)
    expected = _expected_rows(module.net)
    assert len(module.val_detections) == NUM_BOXES * len(LABELMAP)  # one row per (box, evaluated class)
    assert sorted(module.val_detections) == sorted(expected)
    reference = evaluate_ava(tmp_path / "labelmap.pbtxt", tmp_path / "gt.csv", expected, tmp_path / "excluded.csv")
    result = module.eval_results["val"]
    assert result["mAP"] == reference["mAP"] and result["num_groundtruth"] == {
        "bend/bow": 1,
        "stand": 2,
        "watch (a person)": 1,
    }
    assert float(trainer.callback_metrics["val/frame_map"]) == pytest.approx(reference["mAP"], abs=1e-7)

    trainer.test(module, datamodule=dm, verbose=False)  # other batches, same detections
    assert sorted(module.test_detections) == sorted(expected)
    csv = write_detections_csv(tmp_path / "detections.csv", module.test_detections)
    from_csv = evaluate_ava(tmp_path / "labelmap.pbtxt", tmp_path / "gt.csv", csv, tmp_path / "excluded.csv")
    assert module.eval_results["test"]["mAP"] == from_csv["mAP"] == reference["mAP"]


def test_evaluation_pools_the_extended_boxes_and_writes_the_given_ones(tmp_path):
    module = _module(test_box_extend=[0.4, 0.2])
    _trainer().validate(module, datamodule=_eval_datamodule(tmp_path, KEYFRAMES), verbose=False)
    assert sorted(module.val_detections) == sorted(_expected_rows(module.net, extend=(0.4, 0.2)))
    assert sorted(module.val_detections) != sorted(_expected_rows(module.net))
    with pytest.raises(ValueError, match=r"model.module.test_box_extend=\[0.1\]: give 2 non-negative fractions"):
        _module(test_box_extend=[0.1])


def test_training_pools_jittered_boxes(monkeypatch):
    seen: list[torch.Tensor] = []
    module = _module(train_box_jitter=(0.2, 0.1, 0.1, 0.05))
    forward = module.net.forward

    def spy(video: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        seen.append(torch.cat(boxes))
        return forward(video, boxes)

    monkeypatch.setattr(module.net, "forward", spy)
    _trainer(1).fit(module, _loader(KEYFRAMES[:2]))
    given = torch.cat([KEYFRAMES[0]["boxes"], KEYFRAMES[1]["boxes"]])
    assert seen[0].shape == given.shape and not torch.equal(seen[0], given)
    assert (seen[0] - given).abs().max() <= 0.2 * 32 + 1e-4  # no edge moves more than 0.2 of the box


def test_loss_times_boxes_scales_the_mean_by_the_steps_boxes():
    losses = {}
    for flag in (False, True):
        torch.manual_seed(0)
        module, grads = _module(loss_times_boxes=flag), Grads()
        _trainer(1, [grads]).fit(module, _loader(KEYFRAMES[:2]))  # 3 boxes in the first batch
        losses[flag] = grads.losses[0]
    assert losses[True] == pytest.approx(3 * losses[False], rel=1e-6)


def test_scores_without_the_box_score_are_the_action_scores(tmp_path):
    module = _module(score_with_box=False)
    _trainer().validate(module, datamodule=_eval_datamodule(tmp_path, KEYFRAMES), verbose=False)
    plain, scaled = _expected_rows(module.net, score_with_box=False), _expected_rows(module.net)
    assert sorted(module.val_detections) == sorted(plain) != sorted(scaled)


def test_duplicates_count_once(tmp_path):
    module = _module()
    once, twice = _eval_datamodule(tmp_path, KEYFRAMES), _eval_datamodule(tmp_path, [*KEYFRAMES, *KEYFRAMES[:2]])
    _trainer().validate(module, datamodule=once, verbose=False)
    rows, result = list(module.val_detections), module.eval_results["val"]
    _trainer().validate(module, datamodule=twice, verbose=False)
    assert module.val_detections == rows and module.eval_results["val"]["mAP"] == result["mAP"]
    doubled = evaluate_ava(LABELMAP, tmp_path / "gt.csv", rows + rows[: 3 * len(LABELMAP)])
    assert doubled["mAP"] != result["mAP"]  # what counting the repeated boxes twice would have done


def test_without_eval_files_all_classes_are_kept_and_map_skipped_with_one_warning(caplog):
    module, trainer = _module(), _trainer()
    with caplog.at_level(logging.WARNING, logger="smile.lit.detect"):
        trainer.validate(module, _loader(KEYFRAMES), verbose=False)
        trainer.validate(module, _loader(KEYFRAMES, batch=1), verbose=False)  # a batch of one empty keyframe too
    assert len(module.val_detections) == NUM_BOXES * 80
    assert "val/frame_map" not in trainer.callback_metrics and "val" not in module.eval_results
    assert sum("no eval_files" in r.getMessage() for r in caplog.records) == 1


def test_max_detections_per_image_keeps_the_best_rows(tmp_path):
    module = _module(max_detections_per_image=2)
    _trainer().validate(module, datamodule=_eval_datamodule(tmp_path, KEYFRAMES), verbose=False)
    assert len(module.val_detections) == 2 * 3  # three keyframes with boxes
    for video, second in {(r[0], r[1]) for r in module.val_detections}:
        ranked = sorted((r for r in _expected_rows(module.net) if r[:2] == (video, second)), key=lambda r: -r[7])
        kept = sorted((r for r in module.val_detections if r[:2] == (video, second)), key=lambda r: -r[7])
        assert [r[7] for r in kept] == [r[7] for r in ranked[:2]]


def test_layer_decay_scales():
    module = _module(layer_decay=0.5)
    groups = module.param_groups(lr=2.0, weight_decay=0.05)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(module.net.named_parameters())
    assert len(scale) == len(named) == sum(len(g["params"]) for g in groups)  # each parameter once
    expected = {
        "encoder.patch_embed.proj.weight": 0.5**3,  # layer 0 of a 2-block encoder
        "encoder.blocks.0.attn.qkv.weight": 0.5**2,
        "encoder.blocks.1.mlp.fc2.weight": 0.5,  # the last block
        "encoder.norm.weight": 1.0,
        "head.fc.weight": 1.0,
        "head.fc.bias": 1.0,
    }
    assert {n: scale[id(named[n])] for n in expected} == expected
    assert [decay[id(named[n])] for n in ("head.fc.weight", "head.fc.bias", "encoder.norm.weight")] == [0.05, 0.0, 0.0]
    assert all(g["lr"] == 2.0 * g["lr_scale"] for g in groups)
    assert len({g["name"] for g in groups}) == len(groups)  # head and final norm share the layer-3 groups


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="model.loss_mode='softmax' is unknown"):
        _module(loss_mode="softmax")
    with pytest.raises(ValueError, match="max_detections_per_image=-1 must be >= 0"):
        _module(max_detections_per_image=-1)
