"""Which image sits in which channel (issue 18, point 3): every dataset item compared with its source files.

Shapes and label sets cannot tell a swapped modality, frame or mask; these tests read the PNGs back and
compare value by value, with non-default modality orders and frame selections.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth.data import MultiModalDataset, PairedDataset, SequenceDataset, ensure_phantoms, read_image


def _u(path) -> torch.Tensor:
    """A PNG as the datasets scale it: [-1, 1], (C,H,W)."""
    a = read_image(path, raw=True).astype(np.float32)
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(a.transpose(2, 0, 1)) / 127.5 - 1


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("channels")


def test_paired_dataset_src_and_dst_are_their_files(cache) -> None:
    root = ensure_phantoms("retina", {"train": 2}, size=(48, 60), seed=0, root=cache)
    ds = PairedDataset(root, "train", crop=None, flip=False, masks=("vessels",))
    for i, iid in enumerate(ds.ids):
        it = ds[i]
        assert it["id"] == iid
        assert torch.equal(it["src"], _u(root / "train" / "fundus" / f"{iid}.png")) and it["src"].shape[0] == 3
        assert torch.equal(it["dst"], _u(root / "train" / "angio" / f"{iid}.png")) and it["dst"].shape[0] == 1
        vessels = read_image(root / "train" / "mask_vessels" / f"{iid}.png", raw=True) > 127
        assert torch.equal(it["mask_vessels"][0].bool(), torch.from_numpy(vessels))
    swapped = PairedDataset(root, "train", src="angio", dst="fundus", crop=None, flip=False)[0]
    assert torch.equal(swapped["src"], ds[0]["dst"]) and torch.equal(swapped["dst"], ds[0]["src"])


def test_paired_crop_takes_the_same_window_from_both_files(cache) -> None:
    root = ensure_phantoms("retina", {"train": 1}, size=(48, 60), seed=0, root=cache)
    torch.manual_seed(3)
    it = PairedDataset(root, "train", crop=32, flip=False)[0]
    src, dst = _u(root / "train" / "fundus" / "000000.png"), _u(root / "train" / "angio" / "000000.png")
    hits = [
        (y, x) for y in range(48 - 31) for x in range(60 - 31) if torch.equal(src[:, y : y + 32, x : x + 32], it["src"])
    ]
    assert len(hits) == 1
    y, x = hits[0]
    assert torch.equal(dst[:, y : y + 32, x : x + 32], it["dst"])


def test_sequence_frames_are_the_chosen_files_in_order(cache) -> None:
    root = ensure_phantoms("retina_seq", {"train": 1}, size=(32, 40), seed=0, root=cache, n_frames=7)
    ds = SequenceDataset(root, "train", n_frames=3, flip=False)
    assert ds.frame_idx == [0, 3, 6]
    it = ds[0]
    for k, f in enumerate(ds.frame_idx):
        assert torch.equal(it["frames"][k], _u(root / "train" / "frames" / it["id"] / f"{f:02d}.png"))
        leak = read_image(root / "train" / "frames_leakage" / it["id"] / f"{f:02d}.png", raw=True) > 127
        assert torch.equal(it["leakage"][k, 0].bool(), torch.from_numpy(leak))
    assert torch.equal(it["src"], _u(root / "train" / "fundus" / f"{it['id']}.png"))


def test_multimodal_channels_follow_the_requested_order(cache) -> None:
    root = ensure_phantoms("brain", {"train": 1}, size=(32, 32), seed=0, root=cache)
    order = ("flair", "t1", "t2")
    it = MultiModalDataset(root, "train", modalities=order, flip=False)[0]
    for c, m in enumerate(order):
        assert torch.equal(it["images"][c : c + 1], _u(root / "train" / m / f"{it['id']}.png")), m
    labels = read_image(root / "train" / "labels" / f"{it['id']}.png", raw=True)
    assert torch.equal(it["labels"], torch.from_numpy(labels.astype(np.int64)))
    # the contrasts differ, so a swap would be visible
    assert not torch.equal(it["images"][0], it["images"][1])


def test_brain_struct_dataset_reads_modalities_in_order(cache) -> None:
    from medsynth.models.structsynth.data import MODALITIES, BrainStructDataset

    root = ensure_phantoms("brain", {"train": 1}, size=(32, 32), seed=0, root=cache)
    ds = BrainStructDataset.from_layout(root, "train", size=32)
    for c, m in enumerate(MODALITIES):
        ref = read_image(root / "train" / m / "000000.png")
        assert np.allclose(ds.x01[0, c].numpy(), ref, atol=1e-6), m


def test_video_dataset_masks_come_from_first_and_last_frame(cache) -> None:
    from medsynth.knowledge import knowledge_mask
    from medsynth.models.fundus2video import VideoDataset

    root = ensure_phantoms("retina_seq", {"train": 1}, size=(32, 32), seed=0, root=cache, n_frames=5, severity=0.9)
    it = VideoDataset(root, "train", flip=False)[0]
    first, last = (
        _u(root / "train" / "frames" / it["id"] / "00.png"),
        _u(root / "train" / "frames" / it["id"] / "04.png"),
    )
    assert torch.equal(it["km"], knowledge_mask(first, last, 45, (-1.0, 1.0)).float())
    lesion = read_image(root / "train" / "mask_lesions" / f"{it['id']}.png", raw=True) > 127
    assert torch.equal(it["lesion"][0].bool(), torch.from_numpy(lesion))
