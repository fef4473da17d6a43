"""On-disk layout, phantom cache, Datasets."""

import numpy as np
import pytest
import torch

from medsynth.data import (
    MultiModalDataset,
    PairedDataset,
    SequenceDataset,
    ensure_phantoms,
    layout,
    list_ids,
    load_pair,
    read_image,
    read_meta,
    write_phantoms,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def retina_root(cache):
    return ensure_phantoms("retina", {"train": 2, "test": 1}, size=(96, 120), seed=0, root=cache)


def test_layout_on_disk(retina_root):
    meta = read_meta(retina_root)
    assert meta["kind"] == "retina" and meta["splits"] == {"train": ["000000", "000001"], "test": ["000000"]}
    for m in ("fundus", "angio", "mask_vessels", "mask_fov", "mask_leakage"):
        assert (retina_root / "train" / m / "000001.png").is_file(), m
    f = read_image(retina_root / "train" / "fundus" / "000000.png")
    assert f.shape == (96, 120, 3) and f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    assert list_ids(retina_root, "test") == ["000000"]


def test_ensure_phantoms_reuses_cache(cache, retina_root, monkeypatch):
    calls = []
    monkeypatch.setattr(layout, "write_phantoms", lambda *a, **k: calls.append(a))
    again = ensure_phantoms("retina", {"train": 2, "test": 1}, size=(96, 120), seed=0, root=cache)
    assert again == retina_root and calls == []
    ensure_phantoms("retina", {"train": 2, "test": 1}, size=(96, 120), seed=1, root=cache)
    assert len(calls) == 1  # other parameters -> another folder


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSYNTH_CACHE", str(tmp_path / "c"))
    assert layout.cache_dir() == tmp_path / "c"


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from medsynth.data import writers

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers, "write_retina_item", boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_phantoms("retina", {"train": 1}, size=(64, 80), seed=0, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_phantoms_refuses_nonempty(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(FileExistsError, match="x"):
        write_phantoms(tmp_path / "x", "retina", {"train": 1}, 64)


def test_paired_dataset_crops(retina_root):
    torch.manual_seed(0)
    ds = PairedDataset(retina_root, "train", crop=64, crops_per_image=5, masks=("vessels",))
    assert len(ds) == 10
    it = ds[7]
    assert it["src"].shape == (3, 64, 64) and it["dst"].shape == (1, 64, 64) and it["id"] == "000001"
    assert it["mask_vessels"].shape == (1, 64, 64)
    for k in ("src", "dst"):
        assert it[k].dtype == torch.float32 and -1 <= it[k].min() and it[k].max() <= 1
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["src"].shape == (2, 3, 64, 64)
    whole = PairedDataset(retina_root, "train", crop=None, resize=48, flip=False)
    assert len(whole) == 2 and whole[0]["src"].shape == (3, 48, 60)
    with pytest.raises(ValueError, match="crop 200 larger"):
        PairedDataset(retina_root, "train", crop=200)[0]


def test_crops_and_flips_keep_pairs_registered(retina_root):
    torch.manual_seed(1)
    ds = PairedDataset(retina_root, "train", crop=48, crops_per_image=20, masks=("fov",))
    for i in range(20):
        it = ds[i]
        outside = it["mask_fov"][0] == 0
        if outside.sum() > 100:  # black outside the field of view on both images, wherever the crop lands
            assert it["src"][:, outside].mean() < -0.9 and it["dst"][:, outside].mean() < -0.9


def test_load_pair(retina_root):
    p = load_pair(retina_root, "test", "000000", masks=("vessels",))
    assert p["src"].shape == (3, 96, 120) and p["dst"].shape == (1, 96, 120)
    assert p["masks"]["vessels"].dtype == bool
    q = load_pair(retina_root, "test", "000000", as_tensor=False)
    assert q["src"].shape == (96, 120, 3)
    with pytest.raises(FileNotFoundError, match="000009.png"):
        load_pair(retina_root, "test", "000009")


def test_sequence_dataset(cache):
    root = ensure_phantoms("retina_seq", {"train": 1}, size=(64, 80), seed=0, root=cache, n_frames=6)
    meta = read_meta(root)
    assert len(meta["frame_times"]) == 6 and meta["phases"][0] == "arterial"
    ds = SequenceDataset(root, "train", n_frames=3, crop=48)
    it = ds[0]
    assert it["src"].shape == (3, 48, 48) and it["frames"].shape == (3, 1, 48, 48)
    assert it["leakage"].shape == (3, 1, 48, 48) and it["times"].shape == (3,)
    assert torch.all(it["times"][1:] > it["times"][:-1])


def test_multimodal_dataset(cache):
    root = ensure_phantoms("brain", {"train": 2}, size=(64, 64), seed=0, root=cache)
    ds = MultiModalDataset(root, "train")
    it = ds[1]
    assert it["images"].shape == (4, 64, 64) and it["labels"].shape == (64, 64) and it["mask"].shape == (1, 64, 64)
    assert set(it["labels"].unique().tolist()) <= {0, 1, 2, 4}
    assert not ((it["labels"] > 0) & (it["mask"][0] == 0)).any()
    pair = PairedDataset(root, "train", src="t1_motion", dst="t1", crop=None)
    assert pair[0]["src"].shape == (1, 64, 64)
    assert (root / "train" / "pet_low" / "000000.png").is_file() and (root / "train" / "ct" / "000000.png").is_file()


def test_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="unknown phantom kind"):
        ensure_phantoms("liver", {"train": 1}, 32, root=tmp_path)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        read_image(bad)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        read_meta(tmp_path)
