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
ISF = (24, 30)  # small (H, W) for the synthetic archive; the real one is 576x720


def _photo(n: int, group: str) -> Image.Image:
    """A colour 'photograph' whose green channel encodes (group, n): red-dominant like a fundus."""
    g = 20 + 3 * n + (100 if group == "abnormal" else 0)
    return Image.fromarray(
        np.dstack([np.full(ISF, 200, np.uint8), np.full(ISF, g, np.uint8), np.full(ISF, 30, np.uint8)])
    )


def _angio(n: int, group: str) -> Image.Image:
    """A grey 'angiogram' (mode L, as the real ones) whose value encodes (group, n)."""
    return Image.fromarray(np.full(ISF, 10 + 2 * n + (100 if group == "abnormal" else 0), np.uint8))


def _fake_isfahan(root: Path, n: int = 30) -> Path:
    """The official archive's layout and naming: ABNORMAL/<n>.jpg photo + <n>-<n>.jpg angiogram,
    NORMAL/<n>-<n>.jpg photo + <n>.jpg angiogram (official random_crop.py)."""
    for group, folder in (("abnormal", "ABNORMAL"), ("normal", "NORMAL")):
        d = root / "Dataset" / folder
        d.mkdir(parents=True)
        for k in range(1, n + 1):
            photo, angio = (f"{k}.jpg", f"{k}-{k}.jpg") if group == "abnormal" else (f"{k}-{k}.jpg", f"{k}.jpg")
            _photo(k, group).save(d / photo, quality=95)
            _angio(k, group).save(d / angio, quality=95)
    return root / "Dataset"


def test_isfahan_orientation_per_group_and_the_paper_selection(tmp_path):
    _fake_isfahan(tmp_path / "src")
    out = convert_isfahan(tmp_path / "src", tmp_path / "o", size=ISF)
    meta = read_meta(out)
    train, test = meta["splits"]["train"], meta["splits"]["test"]
    assert sorted(train) == sorted(
        [f"abnormal_{k}" for k in (4, 5, 6, 8, 18, 21, 28)]
        + [f"normal_{k}" for k in (1, 4, 7, 8, 11, 15, 16, 21, 24, 28)]
    )
    assert len(test) == 14 and not set(test) & set(train) and meta["registered"] is False
    for split, ids in (("train", train), ("test", test)):
        for iid in ids:
            group, n = iid.split("_")
            f = read_image(out / split / "fundus" / f"{iid}.png", raw=True)
            a = read_image(out / split / "angio" / f"{iid}.png", raw=True)
            assert f.shape == (*ISF, 3) and a.shape == ISF, iid
            # the colour photograph of THIS pair went to fundus, its grey angiogram to angio
            assert abs(float(np.median(f[..., 1])) - np.asarray(_photo(int(n), group))[0, 0, 1]) <= 3, iid
            assert abs(float(np.median(a)) - np.asarray(_angio(int(n), group))[0, 0]) <= 3, iid
    # the test draw is seeded (repeatable) and --n-test all keeps the 43 other pairs
    again = read_meta(convert_isfahan(tmp_path / "src", tmp_path / "o2", size=ISF))["splits"]["test"]
    assert again == test
    rest = read_meta(convert_isfahan(tmp_path / "src", tmp_path / "o3", n_test=None, size=ISF))["splits"]["test"]
    assert len(rest) == 60 - 17
    own = read_meta(
        convert_isfahan(tmp_path / "src", tmp_path / "o4", pairs="normal:2;abnormal:3", n_test=1, size=ISF)
    )["splits"]
    assert own["train"] == ["abnormal_3", "normal_2"] and len(own["test"]) == 1


@pytest.mark.parametrize("group", ["NORMAL", "ABNORMAL"])
def test_isfahan_refuses_swapped_modalities(tmp_path, group):
    d = _fake_isfahan(tmp_path / "src", n=3)
    # the converter's old, wrong belief: <n>.jpg is the photograph in both folders
    plain, dashed = d / group / "2.jpg", d / group / "2-2.jpg"
    a, b = Image.open(plain).copy(), Image.open(dashed).copy()
    a.save(dashed, quality=95)
    b.save(plain, quality=95)
    photo = dashed if group == "NORMAL" else plain  # where the converter expects the photograph
    with pytest.raises(DataError, match=f"colour fundus photograph, but .*{photo.name}.*swapped"):
        convert_isfahan(tmp_path / "src", tmp_path / "o", pairs="all", size=ISF)
    assert not (tmp_path / "o").exists()


def test_isfahan_refuses_a_colour_angiogram_and_bad_files(tmp_path):
    d = _fake_isfahan(tmp_path / "src", n=3)
    _photo(2, "normal").save(d / "ABNORMAL" / "2-2.jpg", quality=95)  # a colour image as the angiogram
    with pytest.raises(DataError, match="grey angiogram, but .*2-2.jpg is in colour"):
        convert_isfahan(tmp_path / "src", tmp_path / "o", pairs="all", size=ISF)
    _angio(2, "abnormal").save(d / "ABNORMAL" / "2-2.jpg", quality=95)
    (d / "NORMAL" / "3.jpg").unlink()
    with pytest.raises(DataError, match="unpaired.*3-3.jpg"):
        convert_isfahan(tmp_path / "src", tmp_path / "o", pairs="all", size=ISF)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(d / "NORMAL" / "3.jpg")
    with pytest.raises(DataError, match="wrong size.*3.jpg"):
        convert_isfahan(tmp_path / "src", tmp_path / "o", pairs="all", size=ISF)
    with pytest.raises(DataError, match="pair abnormal 4 of the selection is missing"):
        convert_isfahan(tmp_path / "src", tmp_path / "o")  # the paper's selection needs pairs up to 28
    assert not (tmp_path / "o").exists()


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
        nib.save(
            nib.Nifti1Image(rng.random(shape).astype(np.float32) + 0.1, np.eye(4)), case / f"{case.name}_{m}.nii.gz"
        )
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
