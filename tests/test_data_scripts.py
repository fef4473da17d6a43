"""data_scripts: safe extraction, converters (real DRIVE when ../shared/data exists), bad inputs."""
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "data_scripts"))

from _common import DataError, download, safe_extract, sha256sum  # noqa: E402
from convert_brats import convert_brats  # noqa: E402
from convert_drive import convert_drive  # noqa: E402
from convert_fire import convert_fire  # noqa: E402
from fetch_isfahan import convert_isfahan  # noqa: E402

from medsynth.data import PairedDataset, read_image, read_meta  # noqa: E402
from medsynth.data.realism import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()


# ---------------------------------------------------------------- archives
def test_zip_slip_refused(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("ok.txt", "fine")
        f.writestr("../evil.txt", "pwned")
    with pytest.raises(DataError, match="evil.txt"):
        safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/medsynth_evil_abs.txt", "a/../../evil.txt"])
def test_tar_traversal_refused(tmp_path, name):
    t = tmp_path / "evil.tar.gz"
    with tarfile.open(t, "w:gz") as f:
        data = b"pwned"
        info = tarfile.TarInfo(name)
        info.size = len(data)
        f.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="refusing"):
        safe_extract(t, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_symlink_out_refused(tmp_path):
    t = tmp_path / "link.tar"
    with tarfile.open(t, "w") as f:
        info = tarfile.TarInfo("inside/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../etc/passwd"
        f.addfile(info)
    with pytest.raises(DataError, match="points outside"):
        safe_extract(t, tmp_path / "out")


def test_good_archive_and_checksum(tmp_path):
    z = tmp_path / "good.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("d/a.txt", "hello")
    out = safe_extract(z, tmp_path / "out")
    assert (out / "d" / "a.txt").read_text() == "hello"
    assert sha256sum(out / "d" / "a.txt") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    with pytest.raises(DataError, match="not a zip or tar"):
        safe_extract(out / "d" / "a.txt", tmp_path / "x")


def test_download_offline_error_names_url(tmp_path):
    with pytest.raises(DataError, match="127.0.0.1:9/nothing.zip"):
        download("http://127.0.0.1:9/nothing.zip", tmp_path / "n.zip", None, timeout=2)
    assert not (tmp_path / "n.zip").exists()


# ---------------------------------------------------------------- DRIVE
@pytest.mark.realdata
@pytest.mark.skipif(SHARED is None or not (SHARED / "DRIVE").is_dir(), reason="../shared/data/DRIVE absent")
def test_drive_real(tmp_path):
    out = convert_drive(SHARED / "DRIVE", tmp_path / "drive")
    meta = read_meta(out)
    assert len(meta["splits"]["train"]) == 20
    f = read_image(out / "train" / "fundus" / "21.png")
    v = read_image(out / "train" / "mask_vessels" / "21.png") > 0.5
    fov = read_image(out / "train" / "mask_fov" / "21.png") > 0.5
    assert f.shape == (584, 565, 3) and 0.08 < v[fov].mean() < 0.18
    ds = PairedDataset(out, "train", src="fundus", dst="mask_vessels", crop=256, crops_per_image=2)
    assert ds[0]["src"].shape == (3, 256, 256)


def _fake_drive(root, n=2, size=(24, 20)):
    d = root / "DRIVE" / "training"
    for sub in ("images", "1st_manual", "mask"):
        (d / sub).mkdir(parents=True)
    for i in range(21, 21 + n):
        Image.fromarray(np.full((*size, 3), 120, np.uint8)).save(d / "images" / f"{i}_training.tif")
        Image.fromarray(np.zeros(size, np.uint8)).save(d / "1st_manual" / f"{i}_manual1.gif")
        Image.fromarray(np.full(size, 255, np.uint8)).save(d / "mask" / f"{i}_training_mask.gif")
    return d


def test_drive_fake_ok(tmp_path):
    _fake_drive(tmp_path)
    out = convert_drive(tmp_path / "DRIVE", tmp_path / "o", size=(24, 20))
    assert read_meta(out)["splits"]["train"] == ["21", "22"]


@pytest.mark.parametrize("case", ["missing_mask", "unreadable", "wrong_size", "unpaired_manual"])
def test_drive_bad_inputs_name_the_file(tmp_path, case):
    d = _fake_drive(tmp_path)
    if case == "missing_mask":
        bad = d / "mask" / "22_training_mask.gif"
        bad.unlink()
    elif case == "unreadable":
        bad = d / "images" / "22_training.tif"
        bad.write_bytes(b"garbage")
    elif case == "wrong_size":
        bad = d / "1st_manual" / "21_manual1.gif"
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(bad)
    else:
        bad = d / "1st_manual" / "99_manual1.gif"
        Image.fromarray(np.zeros((24, 20), np.uint8)).save(bad)
    with pytest.raises(DataError, match=bad.name):
        convert_drive(tmp_path / "DRIVE", tmp_path / "o", size=(24, 20))
    assert not (tmp_path / "o").exists()  # atomic: nothing half-written


def test_drive_from_zip(tmp_path):
    _fake_drive(tmp_path)
    z = tmp_path / "DRIVE.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in (tmp_path / "DRIVE").rglob("*"):
            f.write(p, p.relative_to(tmp_path))
    out = convert_drive(z, tmp_path / "o", size=(24, 20))
    assert (out / "train" / "mask_vessels" / "22.png").is_file()


# ---------------------------------------------------------------- Isfahan, FIRE, BraTS
def _fake_isfahan(root):
    d = root / "normal"
    d.mkdir(parents=True)
    for k in ("1", "2"):
        Image.fromarray(np.full((576, 720, 3), 90, np.uint8)).save(d / f"{k}.jpg")
        Image.fromarray(np.full((576, 720), 60, np.uint8)).save(d / f"{k}-1.jpg")
    return d


def test_isfahan_pairs_and_errors(tmp_path):
    d = _fake_isfahan(tmp_path / "src")
    out = convert_isfahan(tmp_path / "src", tmp_path / "o")
    meta = read_meta(out)
    assert meta["registered"] is False and sum(len(v) for v in meta["splits"].values()) == 2
    (d / "2-1.jpg").unlink()
    with pytest.raises(DataError, match="2.jpg"):
        convert_isfahan(tmp_path / "src", tmp_path / "o2")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(d / "2-1.jpg")
    with pytest.raises(DataError, match="wrong size.*2-1.jpg"):
        convert_isfahan(tmp_path / "src", tmp_path / "o3")


def test_fire_fake(tmp_path):
    img = tmp_path / "FIRE" / "Images"
    gt = tmp_path / "FIRE" / "Ground Truth"
    img.mkdir(parents=True)
    gt.mkdir()
    for s in ("1", "2"):
        Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(img / f"A01_{s}.jpg")
    np.savetxt(gt / "control_points_A01_1_2.txt", np.ones((10, 4)) * 16)
    out = convert_fire(tmp_path / "FIRE", tmp_path / "o", size=16, expect=(32, 32))
    assert np.loadtxt(out / "test" / "points" / "A01.txt").max() == 8
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(img / "A02_2.jpg")
    with pytest.raises(DataError, match="A02_2.jpg"):
        convert_fire(tmp_path / "FIRE", tmp_path / "o2", size=16, expect=(32, 32))


def test_brats_fake(tmp_path):
    nib = pytest.importorskip("nibabel")
    shape = (16, 16, 8)
    case = tmp_path / "B" / "BraTS20_Training_001"
    case.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for m in ("t1", "t1ce", "t2", "flair"):
        nib.save(nib.Nifti1Image(rng.random(shape).astype(np.float32) + 0.1, np.eye(4)), case / f"{case.name}_{m}.nii.gz")
    seg = np.zeros(shape, np.uint8)
    seg[4:8, 4:8, 2:6] = 2
    seg[5:7, 5:7, 3:5] = 4
    nib.save(nib.Nifti1Image(seg, np.eye(4)), case / f"{case.name}_seg.nii.gz")
    out = convert_brats(tmp_path / "B", tmp_path / "o", slices=2, test_fraction=0, shape=shape)
    ids = read_meta(out)["splits"]["train"]
    assert len(ids) == 2
    lab = read_image(out / "train" / "labels" / f"{ids[0]}.png", raw=True)
    assert set(np.unique(lab)) <= {0, 2, 4} and lab.any()
    (case / f"{case.name}_flair.nii.gz").unlink()
    with pytest.raises(DataError, match="flair"):
        convert_brats(tmp_path / "B", tmp_path / "o2", shape=shape)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), case / f"{case.name}_flair.nii.gz")
    with pytest.raises(DataError, match="wrong size.*flair"):
        convert_brats(tmp_path / "B", tmp_path / "o3", shape=shape)


def test_make_phantoms_cli(tmp_path):
    from make_phantoms import main
    main(["brain", str(tmp_path / "b"), "--train", "1", "--test", "1", "--size", "48"])
    meta = read_meta(tmp_path / "b")
    assert meta["kind"] == "brain" and meta["size"] == [48, 48]
    assert (tmp_path / "b" / "test" / "flair" / "000000.png").is_file()
