"""The datasets by value on a hand-written layout (known uint8 pixels): the [-1, 1] scaling, the mask threshold
at 127/128, which file lands in which channel and frame, crop windows and flips applied alike to every image of
an item, fixed crops, resizing (nearest for masks/labels), frame selection and times, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth.data import MultiModalDataset, PairedDataset, SequenceDataset
from medsynth.data.layout import write_image, write_meta


def _ramp(h: int, w: int, off: int, ch: int = 0) -> np.ndarray:
    """uint8 (H,W) or (H,W,ch): a distinct value per pixel (and channel), ``off`` apart per file."""
    base = (np.arange(h * w).reshape(h, w) * 3 + off) % 256
    if not ch:
        return base.astype(np.uint8)
    return np.stack([(base + 80 * c) % 256 for c in range(ch)], -1).astype(np.uint8)


def _u(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)) / 127.5 - 1


MASK = np.array([[0, 127, 128, 255, 0, 200], [127, 128, 1, 254, 126, 129]] * 3, np.uint8)  # (6, 6)


@pytest.fixture()
def paired(tmp_path):
    write_meta(tmp_path, {"splits": {"train": ["b", "a"]}})
    for k, iid in enumerate(["a", "b"]):
        write_image(tmp_path / "train" / "fundus" / f"{iid}.png", _ramp(6, 6, 10 * k, 3))
        write_image(tmp_path / "train" / "angio" / f"{iid}.png", _ramp(6, 6, 10 * k + 5))
        write_image(tmp_path / "train" / "mask_fov" / f"{iid}.png", MASK)
    return tmp_path


def test_paired_scaling_mask_threshold_and_id_order(paired) -> None:
    ds = PairedDataset(paired, "train", crop=None, flip=False, masks=["fov"])
    assert ds.ids == ["b", "a"] and len(ds) == 2 and ds.per == 1  # meta.json's order; crop=None: one per pair
    it = ds[0]
    assert it["id"] == "b" and it["src"].dtype == torch.float32
    assert torch.equal(it["src"], _u(_ramp(6, 6, 10, 3))) and torch.equal(it["dst"], _u(_ramp(6, 6, 15)))
    assert it["src"][0, 0, 0] == 10 / 127.5 - 1 and _u(np.array([[0, 255]], np.uint8)).tolist() == [[[-1.0, 1.0]]]
    assert torch.equal(it["mask_fov"], torch.from_numpy(MASK > 127).float()[None])  # 127 -> 0, 128 -> 1
    assert it["mask_fov"][0, 0, 1] == 0 and it["mask_fov"][0, 0, 2] == 1


def test_paired_crops_and_flips_move_every_image_alike(paired) -> None:
    torch.manual_seed(0)
    ds = PairedDataset(paired, "train", crop=4, crops_per_image=3, flip=True, masks=("fov",))
    assert len(ds) == 6 and ds.per == 3
    src_full, dst_full = _u(_ramp(6, 6, 0, 3)), _u(_ramp(6, 6, 5))
    mask_full = torch.from_numpy(MASK > 127).float()[None]
    seen = set()
    for i in range(3, 6):  # items 3..5 are crops of the second id, "a"
        for _ in range(6):
            it = ds[i]
            assert it["id"] == "a" and it["src"].shape == (3, 4, 4)
            # find the window and flips that give src; dst and the mask must have the same
            hits = _windows(src_full, it["src"])
            assert len(hits) == 1
            y, x, fh, fv = hits[0]
            seen.add(hits[0])
            assert torch.equal(it["dst"], _flip(dst_full[:, y : y + 4, x : x + 4], fh, fv))
            assert torch.equal(it["mask_fov"], _flip(mask_full[:, y : y + 4, x : x + 4], fh, fv))
    assert len({h[:2] for h in seen}) > 1 and {h[2] for h in seen} == {0, 1} and {h[3] for h in seen} == {0, 1}
    # flip=False never flips; crops_per_image defaults to 50, crop to 512 (the paper's 50 fixed 512 crops)
    nf = PairedDataset(paired, "train", crop=4, flip=False)
    assert len(nf) == 100 and nf.per == 50
    with pytest.raises(ValueError, match=r"crop 512 larger than image 6x6 \(fundus/b.png\)"):
        PairedDataset(paired, "train", flip=False)[0]


def _flip(t: torch.Tensor, fh: int, fv: int) -> torch.Tensor:
    t = t.flip(-1) if fh else t
    return t.flip(-2) if fv else t


def _windows(full: torch.Tensor, crop: torch.Tensor, size: int = 4, span: int = 3) -> list[tuple[int, int, int, int]]:
    """Every (y, x, flip-h, flip-v) whose ``size``-px window of ``full`` (offsets 0 .. span-1) equals ``crop``."""
    return [
        (y, x, fh, fv)
        for y in range(span)
        for x in range(span)
        for fh in (0, 1)
        for fv in (0, 1)
        if torch.equal(_flip(full[:, y : y + size, x : x + size], fh, fv), crop)
    ]


def test_fixed_crops_repeat_per_item_and_differ_between_items(paired) -> None:
    ds = PairedDataset(paired, "train", crop=3, crops_per_image=4, flip=False, fixed_crops=7)
    first = [ds[i]["src"] for i in range(8)]
    torch.manual_seed(123)  # the global generator does not matter
    assert all(torch.equal(ds[i]["src"], first[i]) for i in range(8))
    assert len({tuple(t.flatten().tolist()) for t in first[:4]}) > 1
    other = PairedDataset(paired, "train", crop=3, crops_per_image=4, flip=False, fixed_crops=8)
    assert any(not torch.equal(other[i]["src"], first[i]) for i in range(8))
    # item i's window comes from seed * 1_000_003 + i
    g = torch.Generator().manual_seed(7 * 1_000_003 + 5)
    y0, x0 = int(torch.randint(0, 4, (), generator=g)), int(torch.randint(0, 4, (), generator=g))
    assert torch.equal(first[5], _u(_ramp(6, 6, 0, 3))[:, y0 : y0 + 3, x0 : x0 + 3])


def test_resize_scales_the_shorter_side_bilinear_for_images_nearest_for_masks(tmp_path) -> None:
    write_meta(tmp_path, {})
    img = np.zeros((8, 12), np.uint8)
    img[:, 6:] = 255
    write_image(tmp_path / "train" / "fundus" / "x.png", np.stack([img] * 3, -1))
    write_image(tmp_path / "train" / "angio" / "x.png", img)
    write_image(tmp_path / "train" / "mask_m" / "x.png", img)
    it = PairedDataset(tmp_path, "train", crop=None, resize=4, flip=False, masks=["m"])[0]
    assert it["src"].shape == (3, 4, 6) and it["dst"].shape == (1, 4, 6)
    assert set(it["mask_m"].unique().tolist()) == {0.0, 1.0}  # nearest: still a mask
    assert torch.equal(it["mask_m"][0, 0], torch.tensor([0.0, 0, 0, 1, 1, 1]))
    assert it["dst"][0, 0, 0] == -1 and it["dst"][0, 0, -1] == 1 and -1 < it["dst"][0, 0, 2] < 1  # bilinear edge
    with pytest.raises(FileNotFoundError, match="modality folder missing"):
        PairedDataset(tmp_path, "train", dst="t2")


def test_paired_size_mismatch_names_both_files(paired) -> None:
    write_image(paired / "train" / "angio" / "a.png", _ramp(5, 6, 0))
    with pytest.raises(ValueError, match=r"fundus/a.png \(6, 6\) and angio/a.png \(5, 6\) differ in size"):
        PairedDataset(paired, "train", crop=None, flip=False)[1]


@pytest.fixture()
def sequence(tmp_path):
    write_meta(tmp_path, {"frame_times": [0.0, 0.1, 0.3, 0.6, 1.0]})
    write_image(tmp_path / "test" / "fundus" / "e1.png", _ramp(6, 6, 1, 3))
    for k in range(5):
        write_image(tmp_path / "test" / "frames" / "e1" / f"{k:02d}.png", _ramp(6, 6, 40 * k))
        write_image(tmp_path / "test" / "frames_leakage" / "e1" / f"{k:02d}.png", np.roll(MASK, k, 1))
    return tmp_path


def test_sequence_frames_in_order_selection_times_and_leakage(sequence) -> None:
    ds = SequenceDataset(sequence, "test", flip=False)
    it = ds[0]
    assert len(ds) == 1 and it["id"] == "e1" and torch.equal(it["src"], _u(_ramp(6, 6, 1, 3)))
    assert it["frames"].shape == (5, 1, 6, 6)
    for k in range(5):
        assert torch.equal(it["frames"][k], _u(_ramp(6, 6, 40 * k)))
        assert torch.equal(it["leakage"][k], torch.from_numpy(np.roll(MASK, k, 1) > 127).float()[None])
    assert torch.allclose(it["times"], torch.tensor([0.0, 0.1, 0.3, 0.6, 1.0]))
    sel = SequenceDataset(sequence, "test", n_frames=3, flip=False)
    assert sel.frame_idx == [0, 2, 4] and torch.allclose(sel.times, torch.tensor([0.0, 0.3, 1.0]))
    assert torch.equal(sel[0]["frames"][1], _u(_ramp(6, 6, 80)))
    torch.manual_seed(1)
    cr = SequenceDataset(sequence, "test", crop=4, flip=True)
    for _ in range(4):
        c = cr[0]
        full = _u(_ramp(6, 6, 1, 3))
        hits = _windows(full, c["src"])
        ((y, x, fh, fv),) = hits
        for k in range(5):
            assert torch.equal(c["frames"][k], _flip(_u(_ramp(6, 6, 40 * k))[:, y : y + 4, x : x + 4], fh, fv))


def test_sequence_without_times_spreads_them_evenly(sequence) -> None:
    write_meta(sequence, {})
    ds = SequenceDataset(sequence, "test", n_frames=2, flip=False)
    assert ds.frame_idx == [0, 4] and torch.allclose(ds.times, torch.tensor([0.0, 1.0]))
    assert torch.allclose(SequenceDataset(sequence, "test")[0]["times"], torch.linspace(0, 1, 5))
    write_image(sequence / "test" / "frames" / "e1" / "02.png", _ramp(5, 6, 0))
    with pytest.raises(ValueError, match=r"02.png \(5, 6\) differs from fundus \(6, 6\)"):
        ds2 = SequenceDataset(sequence, "test", flip=False)
        ds2[0]


def test_multimodal_channels_follow_modalities_labels_and_mask(tmp_path) -> None:
    write_meta(tmp_path, {})
    mods = ("t1", "t2", "t1c", "flair")
    for j, m in enumerate(mods):
        write_image(tmp_path / "train" / m / "s.png", _ramp(6, 6, 17 * j))
    labels = np.array([[0, 1, 2, 4, 0, 1]] * 6, np.uint8)
    write_image(tmp_path / "train" / "labels" / "s.png", labels)
    write_image(tmp_path / "train" / "mask_brain" / "s.png", MASK)
    ds = MultiModalDataset(tmp_path, "train", flip=False)
    it = ds[0]
    assert ds.modalities == mods and it["images"].shape == (4, 6, 6)
    for j in range(4):
        assert torch.equal(it["images"][j], _u(_ramp(6, 6, 17 * j))[0])
    assert it["labels"].dtype == torch.int64 and torch.equal(it["labels"], torch.from_numpy(labels).long())
    assert torch.equal(it["mask"], torch.from_numpy(MASK > 127).float()[None])
    rev = MultiModalDataset(tmp_path, "train", modalities=["flair", "t1"], flip=False)[0]
    assert torch.equal(rev["images"][0], it["images"][3]) and torch.equal(rev["images"][1], it["images"][0])
    write_image(tmp_path / "train" / "t2" / "s.png", _ramp(5, 6, 0))
    with pytest.raises(ValueError, match=r"t2/s.png \(1, 5, 6\) differs from t1 \(1, 6, 6\)"):
        MultiModalDataset(tmp_path, "train", flip=False)[0]


def test_resize_is_pil_like_antialiased_bilinear_rounded_to_uint8(tmp_path) -> None:
    from PIL import Image

    write_meta(tmp_path, {})
    img = np.zeros((8, 12), np.uint8)
    img[:, 5:] = 255
    img[3, :] = 90
    write_image(tmp_path / "train" / "fundus" / "x.png", np.stack([img] * 3, -1))
    write_image(tmp_path / "train" / "angio" / "x.png", img)
    dst = PairedDataset(tmp_path, "train", crop=None, resize=4, flip=False)[0]["dst"][0]
    levels = (dst + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # stored as uint8 after the resize
    pil = np.asarray(Image.fromarray(img).resize((6, 4), Image.BILINEAR), np.float32)
    assert np.abs(levels.numpy() - pil).max() <= 1.0  # torch's antialias=True matches PIL's bilinear
    tiny = PairedDataset(tmp_path, "train", crop=None, resize=1, flip=False)[0]
    assert tiny["src"].shape == (3, 1, 2)  # shorter side 1, the longer round(12 / 8) = 2
    write_image(tmp_path / "train" / "angio" / "x.png", img[:, :8])
    write_image(tmp_path / "train" / "fundus" / "x.png", np.stack([img[:, :8]] * 3, -1))
    assert PairedDataset(tmp_path, "train", crop=None, resize=1, flip=False)[0]["src"].shape == (3, 1, 1)


def test_crop_windows_cover_every_position_and_flip_independently(paired) -> None:
    torch.manual_seed(2)
    ds = PairedDataset(paired, "train", crop=4, crops_per_image=1)  # flip=True by default
    full = _u(_ramp(6, 6, 10, 3))
    seen = set()
    for _ in range(150):
        it = ds[0]
        (hit,) = _windows(full, it["src"])
        seen.add(hit)
    assert {h[0] for h in seen} == {0, 1, 2} and {h[1] for h in seen} == {0, 1, 2}  # 0 .. h - crop, inclusive
    assert {(h[2], h[3]) for h in seen} == {(0, 0), (0, 1), (1, 0), (1, 1)}  # two independent coin flips
    exact = PairedDataset(paired, "train", crop=6, flip=False)[0]  # crop == image size: the whole image
    assert torch.equal(exact["src"], full)


def test_crop_larger_than_either_side_is_refused(tmp_path) -> None:
    write_meta(tmp_path, {})
    for m in ("t1", "t2"):
        write_image(tmp_path / "train" / m / "s.png", _ramp(6, 9, 0))
    write_image(tmp_path / "train" / "labels" / "s.png", np.zeros((6, 9), np.uint8))
    write_image(tmp_path / "train" / "mask_brain" / "s.png", np.zeros((6, 9), np.uint8))
    with pytest.raises(ValueError, match=r"crop 7 larger than image 6x9 \(t1/s.png\)"):
        MultiModalDataset(tmp_path, "train", modalities=("t1", "t2"), crop=7)[0]
    torch.manual_seed(0)
    it = MultiModalDataset(tmp_path, "train", modalities=("t1", "t2"), crop=5)[0]
    assert it["images"].shape == (2, 5, 5) and it["labels"].shape == (5, 5) and it["mask"].shape == (1, 5, 5)


def test_masks_labels_and_leakage_resize_nearest(tmp_path, sequence) -> None:
    write_meta(tmp_path, {})
    labels = np.zeros((8, 8), np.uint8)
    labels[:, 2:4], labels[:, 4:6], labels[:, 6:] = 1, 2, 4
    for m in ("t1", "t2", "t1c", "flair"):
        write_image(tmp_path / "train" / m / "s.png", _ramp(8, 8, 0))
    write_image(tmp_path / "train" / "labels" / "s.png", labels)
    write_image(
        tmp_path / "train" / "mask_brain" / "s.png", np.kron(np.eye(2, dtype=np.uint8) * 255, np.ones((4, 4), np.uint8))
    )
    it = MultiModalDataset(tmp_path, "train", resize=4, flip=False)[0]
    assert it["images"].shape == (4, 4, 4)
    assert torch.equal(it["labels"], torch.tensor([[0, 1, 2, 4]] * 4))  # nearest: no label 3 between 2 and 4
    assert torch.equal(it["mask"][0], torch.tensor(np.kron(np.eye(2), np.ones((2, 2))), dtype=torch.float32))
    sq = SequenceDataset(sequence, "test", resize=3, flip=False)[0]
    assert sq["frames"].shape == (5, 1, 3, 3) and sq["src"].shape == (3, 3, 3)
    for k in range(5):  # every other pixel of the 6x6 leakage mask
        want = torch.from_numpy(np.roll(MASK, k, 1)[::2, ::2] > 127).float()
        assert torch.equal(sq["leakage"][k, 0], want), k


def test_sequence_defaults_flip_and_frame_errors(sequence) -> None:
    torch.manual_seed(3)
    ds = SequenceDataset(sequence, "test")  # flip=True by default, whole images
    full = _u(_ramp(6, 6, 1, 3))
    flips = set()
    for _ in range(20):
        s = ds[0]["src"]
        flips.add(next((fh, fv) for fh in (0, 1) for fv in (0, 1) if torch.equal(_flip(full, fh, fv), s)))
    assert len(flips) == 4
    one = sequence / "one"
    one.mkdir()
    write_meta(one, {})
    write_image(one / "test" / "fundus" / "e.png", _ramp(6, 6, 0, 3))
    write_image(one / "test" / "frames" / "e" / "00.png", _ramp(6, 6, 0))
    single = SequenceDataset(one, "test", flip=False)
    assert single.frame_idx == [0] and single[0]["frames"].shape == (1, 1, 6, 6) and "leakage" not in single[0]
    (one / "test" / "frames" / "e" / "00.png").unlink()
    with pytest.raises(FileNotFoundError, match="no frames in .*frames/e"):
        SequenceDataset(one, "test")
    write_image(sequence / "test" / "frames" / "e1" / "03.png", _ramp(6, 5, 0))
    with pytest.raises(ValueError, match=r"frame .*test/frames/e1/03.png \(6, 5\) differs from fundus \(6, 6\)"):
        SequenceDataset(sequence, "test", flip=False)[0]


def test_multimodal_defaults_flip(tmp_path) -> None:
    write_meta(tmp_path, {})
    for j, m in enumerate(("t1", "t2", "t1c", "flair")):
        write_image(tmp_path / "train" / m / "s.png", _ramp(6, 6, 17 * j))
    write_image(tmp_path / "train" / "labels" / "s.png", np.zeros((6, 6), np.uint8))
    write_image(tmp_path / "train" / "mask_brain" / "s.png", MASK)
    torch.manual_seed(4)
    ds = MultiModalDataset(tmp_path, "train")
    full = _u(_ramp(6, 6, 0))
    mask_full = torch.from_numpy(MASK > 127).float()[None]
    flips = set()
    for _ in range(20):
        it = ds[0]
        f = next((fh, fv) for fh in (0, 1) for fv in (0, 1) if torch.equal(_flip(full, fh, fv), it["images"][:1]))
        assert torch.equal(it["mask"], _flip(mask_full, *f))
        flips.add(f)
    assert len(flips) == 4


def test_one_pixel_stripes_survive_the_resize_of_masks_and_labels(tmp_path, sequence) -> None:
    # stripes one pixel wide: nearest keeps every other column (all 0 here), bilinear would blend them to ~127.5
    stripes = np.tile(np.array([0, 255] * 4, np.uint8), (8, 1))
    labels = np.tile(np.array([0, 4] * 4, np.uint8), (8, 1))
    write_meta(tmp_path, {})
    write_image(tmp_path / "train" / "fundus" / "x.png", np.stack([stripes] * 3, -1))
    write_image(tmp_path / "train" / "angio" / "x.png", stripes)
    write_image(tmp_path / "train" / "mask_v" / "x.png", stripes)
    it = PairedDataset(tmp_path, "train", crop=None, resize=4, flip=False, masks=["v"])[0]
    assert not it["mask_v"].any() and (it["dst"] > -0.5).all()  # the image is blended, the mask is not
    for m in ("t1", "t2", "t1c", "flair"):
        write_image(tmp_path / "train" / m / "x.png", stripes)
    write_image(tmp_path / "train" / "labels" / "x.png", labels)
    write_image(tmp_path / "train" / "mask_brain" / "x.png", stripes)
    mm = MultiModalDataset(tmp_path, "train", resize=4, flip=False)[0]
    assert not mm["labels"].any() and not mm["mask"].any()
    for k in range(5):
        write_image(sequence / "test" / "frames_leakage" / "e1" / f"{k:02d}.png", stripes[:6, :6])
    sq = SequenceDataset(sequence, "test", resize=3, flip=False)[0]
    assert not sq["leakage"].any()
    with pytest.raises(ValueError, match=r"crop 7 larger than image 6x6 \(fundus/e1.png\)"):
        SequenceDataset(sequence, "test", crop=7)[0]
