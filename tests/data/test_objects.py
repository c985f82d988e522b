"""Object files: scanning, validation, packing into a memory map, loading, and the smile-data CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from smile.cli.data import main
from smile.data.objects import (
    ObjectFileError,
    load_images,
    load_objects,
    load_packed,
    pack_objects,
    scan_objects,
)

SIZES = {"dog/1.png": (40, 20), "dog/2.png": (16, 16), "cup/7.png": (30, 50)}


def rgba_image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    arr[..., 3] = 0
    arr[h // 4 : h - h // 4, w // 4 : w - w // 4, 3] = 255  # an opaque rectangle on a transparent canvas
    return Image.fromarray(arr, "RGBA")


@pytest.fixture
def objects(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    for i, (name, (w, h)) in enumerate(SIZES.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        rgba_image(w, h, i).save(root / name)
    return root


def expected_pixels(path: Path, side: int) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA").resize((side, side), Image.Resampling.BICUBIC))


def test_pack_round_trip(objects: Path, tmp_path: Path):
    out = tmp_path / "packed"
    report = pack_objects(objects, out, max_side=16, progress=False)
    assert report.num_objects == 3 and report.num_skipped == 0
    index = json.loads((out / "index.json").read_text())
    names = sorted(SIZES)  # scanning order: sorted paths
    assert index["names"] == names and index["categories"] == [n.split("/")[0] for n in names]
    assert index["num_objects"] == 3 and index["max_side"] == 16 and index["version"] == 1
    assert index["sizes"] == [list(SIZES[n]) for n in names]
    assert index["aspect"] == pytest.approx([SIZES[n][0] / SIZES[n][1] for n in names])
    assert (out / "objects.u8").stat().st_size == 3 * 16 * 16 * 4
    assert report.nbytes == (out / "objects.u8").stat().st_size + (out / "index.json").stat().st_size
    bank = load_packed(out)
    assert bank.sprites.shape == (3, 4, 16, 16) and bank.names == names
    for i, name in enumerate(names):
        assert np.array_equal(bank.sprites[i].permute(1, 2, 0).numpy(), expected_pixels(objects / name, 16))
    assert torch.allclose(bank.aspect, torch.tensor(index["aspect"]))
    assert bank.take(torch.tensor([[0, 2]])).shape == (1, 2, 4, 16, 16)
    clone = pickle.loads(pickle.dumps(bank))  # memory-mapped banks pickle as "reopen"
    assert torch.equal(clone.sprites, bank.sprites) and clone.reload is not None


def test_list_file_selects_a_subset_in_order(objects: Path, tmp_path: Path):
    listing = tmp_path / "object_instances.txt"
    listing.write_text("cup/7.png\n\n dog/2.png \n")
    assert scan_objects(objects, listing) == [objects / "cup/7.png", objects / "dog/2.png"]
    report = pack_objects(objects, tmp_path / "sub", list_file=listing, max_side=8, progress=False)
    assert report.num_objects == 2 and load_packed(tmp_path / "sub").names == ["cup/7.png", "dog/2.png"]
    full = tmp_path / "full"
    pack_objects(objects, full, max_side=8, progress=False)
    sub = load_objects(full, list_file=listing)
    assert sub.names == ["cup/7.png", "dog/2.png"]
    assert torch.equal(sub.sprites, load_packed(tmp_path / "sub").sprites)
    listing.write_text("cup/7.png\ncup/missing.png\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        scan_objects(objects, listing)


def test_rgb_object_refused_or_skipped(objects: Path, tmp_path: Path):
    Image.new("RGB", (10, 10), (1, 2, 3)).save(objects / "dog" / "3.png")
    with pytest.raises(ObjectFileError, match=r"dog/3\.png has no alpha channel \(mode RGB\).*--skip-bad") as err:
        pack_objects(objects, tmp_path / "out", max_side=8, progress=False)
    assert err.value.reason == "no_alpha"
    assert not (tmp_path / "out" / "objects.u8").exists() and not list((tmp_path / "out").glob("*.tmp"))
    report = pack_objects(objects, tmp_path / "out", max_side=8, skip_bad=True, progress=False)
    assert report.num_objects == 3 and report.skipped == {"no_alpha": ["dog/3.png"]}
    assert "no_alpha: 1 (dog/3.png)" in report.summary()
    assert len(load_packed(tmp_path / "out")) == 3
    assert (tmp_path / "out" / "objects.u8").stat().st_size == 3 * 8 * 8 * 4  # reserved row truncated


def test_corrupt_and_transparent_files(objects: Path, tmp_path: Path):
    (objects / "cup" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(ObjectFileError, match=r"cup/bad\.png cannot be decoded") as err:
        pack_objects(objects, tmp_path / "out", max_side=8, progress=False)
    assert err.value.reason == "unreadable"
    Image.new("RGBA", (8, 8), (9, 9, 9, 0)).save(objects / "cup" / "empty.png")
    report = pack_objects(objects, tmp_path / "out", max_side=8, skip_bad=True, progress=False)
    assert report.skipped == {"unreadable": ["cup/bad.png"], "empty_alpha": ["cup/empty.png"]}
    assert report.num_objects == 3


def test_other_alpha_modes_are_accepted(tmp_path: Path):
    root = tmp_path / "objs"
    (root / "a").mkdir(parents=True)
    Image.new("LA", (6, 6), (100, 255)).save(root / "a" / "la.png")
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.save(root / "a" / "pal.png", transparency=0)
    report = pack_objects(root, tmp_path / "out", max_side=4, progress=False)
    assert report.num_objects == 2 and report.opaque == ["a/la.png", "a/pal.png"]
    assert "alpha 255 everywhere" in report.summary()


def test_empty_folder_errors(tmp_path: Path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no objects found"):
        pack_objects(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        scan_objects(tmp_path / "nowhere")


def test_load_objects_from_png_folder_matches_pack(objects: Path, tmp_path: Path):
    pack_objects(objects, tmp_path / "packed", max_side=12, progress=False)
    packed, direct = load_packed(tmp_path / "packed"), load_objects(objects, max_side=12)
    assert direct.names == packed.names and torch.equal(direct.sprites, packed.sprites)
    assert torch.equal(direct.aspect, packed.aspect)


def test_truncated_pack_is_reported(objects: Path, tmp_path: Path):
    out = tmp_path / "packed"
    pack_objects(objects, out, max_side=8, progress=False)
    with open(out / "objects.u8", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="incomplete"):
        load_packed(out)


def test_load_images(tmp_path: Path):
    folder = tmp_path / "places" / "beach"
    folder.mkdir(parents=True)
    Image.new("RGB", (40, 20), (200, 100, 50)).save(folder / "a.jpg", quality=95)
    Image.new("RGB", (10, 30), (0, 0, 255)).save(folder / "b.png")
    bank = load_images(tmp_path / "places", size=16)
    assert bank.names == ["beach/a.jpg", "beach/b.png"] and bank.sprites.shape == (2, 4, 16, 16)
    assert (bank.sprites[:, 3] == 255).all()
    assert bank.sprites[1, :3, 8, 8].tolist() == [0, 0, 255]
    assert abs(int(bank.sprites[0, 0, 8, 8]) - 200) <= 3
    with pytest.raises(FileNotFoundError):
        load_images(tmp_path / "places" / "none")


def test_cli_pack_objects(objects: Path, tmp_path: Path, capsys):
    Image.new("RGB", (10, 10)).save(objects / "dog" / "rgb.png")
    code = main(
        [
            "pack-objects",
            "--root",
            str(objects),
            "--out",
            str(tmp_path / "o"),
            "--max-side",
            "8",
            "--skip-bad",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "packed 3 objects" in printed and "no_alpha: 1 (dog/rgb.png)" in printed
    assert len(load_packed(tmp_path / "o")) == 3
    code = main(["pack-objects", "--root", str(objects), "--out", str(tmp_path / "o2"), "--no-progress"])
    assert code == 1 and "dog/rgb.png has no alpha channel" in capsys.readouterr().err


@pytest.mark.parametrize("via_cli", [False, True])
def test_default_pack_keeps_256_px(tmp_path: Path, via_cli: bool):
    root = tmp_path / "big"
    (root / "kite").mkdir(parents=True)
    rgba_image(300, 200, seed=5).save(root / "kite" / "1.png")
    out = tmp_path / "packed"
    if via_cli:
        assert main(["pack-objects", "--root", str(root), "--out", str(out), "--no-progress"]) == 0
    else:
        pack_objects(root, out, progress=False)
    index = json.loads((out / "index.json").read_text())
    assert index["max_side"] == 256 and index["sizes"] == [[300, 200]]
    assert (out / "objects.u8").stat().st_size == 256 * 256 * 4  # 256 KiB per object
    bank = load_packed(out)
    assert bank.sprites.shape == (1, 4, 256, 256)
    assert np.array_equal(bank.sprites[0].permute(1, 2, 0).numpy(), expected_pixels(root / "kite" / "1.png", 256))
