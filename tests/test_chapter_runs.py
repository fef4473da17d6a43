"""The chapters' run modules: presets, claims wired to the right numbers, baselines through the same code.

Each claim's statistic is checked on a hand-made record where the claimed ordering holds and where it is
reversed, so a swapped sign or a wrong row name fails here rather than in a reference run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medsynth import evidence as ev
from medsynth import presets
from medsynth.models import fundus2angio_run as r01
from medsynth.models import fundus2video_run as r05
from medsynth.models import structsynth_run as r04
from medsynth.nbutils import _jsonable, show_source


def _verdicts(claims, record, n=3):
    return [row["verdict"] for row in ev.evaluate_claims(claims, [record] * n)]


# -- chapter 01 --------------------------------------------------------------------------------------
def _scores01(fid: dict[str, float], ssim: dict[str, float]) -> dict:
    return {"scores": {k: {"fid": {"value": fid[k]}, "ssim": ssim[k]} for k in fid}}


def test_ch01_claims_follow_table1_order() -> None:
    rows = r01.MODELS + ev.BASELINES[:2]
    paper_like = _scores01(
        dict(zip(rows, (48.6, 42.8, 30.3, 90.0, 60.0), strict=True)),
        dict(zip(rows, (0.6, 0.6, 0.7, 0.4, 0.3), strict=True)),
    )
    assert set(_verdicts(r01.claims(), paper_like)) == {ev.SUPPORTED}
    reversed_ = _scores01(
        dict(zip(rows, (30.0, 40.0, 50.0, 10.0, 5.0), strict=True)),
        dict(zip(rows, (0.3, 0.3, 0.2, 0.4, 0.3), strict=True)),
    )
    assert set(_verdicts(r01.claims(), reversed_)) == {ev.CONTRADICTED}
    assert _verdicts(r01.claims(), paper_like, n=1) == [ev.INCONCLUSIVE] * len(r01.claims())


def test_ch01_every_model_claim_uses_the_worst_model() -> None:
    rows = r01.MODELS + ev.BASELINES[:2]
    rec = _scores01(
        dict(zip(rows, (1, 1, 1, 1, 1), strict=True)), dict(zip(rows, (0.2, 0.9, 0.9, 0.5, 0.3), strict=True))
    )
    claim = next(c for c in r01.claims() if c.text.startswith("every model"))
    assert claim.stat(rec) == pytest.approx(0.2 - 0.5)


def test_ch01_presets_and_widths() -> None:
    q, s, f = (r01.PRESETS[k] for k in ("quick", "standard", "full"))
    assert (
        (q.n_seeds, s.n_seeds) == (1, 3)
        and s.steps > q.steps
        and (s.image_size, s.image_hw) == (q.image_size, q.image_hw)
    )
    assert (f.steps, f.image_size, f.image_hw, f.width_div, f.batch_size) == (21_200, 512, (576, 720), 1, 4)  # Sec. 4.2
    p = presets.choose(r01.PRESETS, "quick", image_size=64)
    tasks = r01.build_tasks(presets.choose(r01.PRESETS, "quick", image_size=64, width_div=8), 0, "off")
    assert tasks["Fundus2Angio"].nets["G_fine"].down[0][1].out_channels == 32 // 8
    g = tasks["pix2pix"].nets["G"]  # pix2pix's U-Net: 7 levels below 256 px (unet_128), ngf = 64 // width_div
    first = next(m for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    assert g.num_downs == 7 and (first.in_channels, first.out_channels) == (3, 64 // 8) and p.image_size == 64
    full = r01.build_tasks(presets.choose(r01.PRESETS, "full"), 0, "off")
    assert sum(x.numel() for x in full["Fundus2Angio"].nets["G_coarse"].parameters()) == 6_679_297
    assert full["pix2pix"].nets["G"].num_downs == 8  # unet_256 at 512 px


def test_ch01_scores_json_reads_live_and_stored_values() -> None:
    from medsynth.metrics import MetricResult

    live = {"m": {"fid": MetricResult(2.5, "FID", "random", 64, 4, 4), "ssim": 0.5}}
    assert r01.scores_json(live) == {"m": {"fid": 2.5, "ssim": 0.5}}
    assert r01.scores_json(json.loads(json.dumps(_jsonable(live)))) == {"m": {"fid": 2.5, "ssim": 0.5}}


# -- chapter 05 --------------------------------------------------------------------------------------
def _scores05(vals: dict[str, tuple[float, float]]) -> dict:
    return {"scores": {k: {"SSIM": s, "PSNR": p} for k, (s, p) in vals.items()}}


def test_ch05_claims_follow_table1_and_the_baseline() -> None:
    good = _scores05(
        {r05.MAIN: (0.5, 22.0), "baseline": (0.4, 20.0), "all_lesion_mask": (0.45, 21.0), ev.BASELINES[0]: (0.45, 21.0)}
    )
    bad = _scores05(
        {r05.MAIN: (0.3, 18.0), "baseline": (0.4, 20.0), "all_lesion_mask": (0.45, 21.0), ev.BASELINES[0]: (0.45, 21.0)}
    )
    rows = ("baseline", "all_lesion_mask", r05.MAIN)
    assert set(_verdicts(r05.claims(rows), good)) == {ev.SUPPORTED}
    assert set(_verdicts(r05.claims(rows), bad)) == {ev.CONTRADICTED}
    assert len(r05.claims(("baseline", r05.MAIN))) == len(r05.claims(rows)) - 1  # no lesion row, no lesion claim
    assert not any("baseline row" in c.text for c in r05.claims((r05.MAIN,)))


def test_ch05_presets() -> None:
    q, s, f = (r05.PRESETS[k] for k in ("quick", "standard", "full"))
    assert r05.MAIN in q.rows and r05.MAIN in s.rows and "baseline" in s.rows and s.n_seeds >= 3
    assert f.rows == tuple(r05.f2v.ABLATIONS) and (f.image_size, f.batch_size) == (512, 1)  # Sec. 3.0.2
    assert f.model_cfg["ngf"] == 64 and f.model_cfg["n_blocks"] == 9 and q.model_cfg["ngf"] == 16


class _Videos(torch.utils.data.Dataset):
    def __init__(self, frames: torch.Tensor) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict:
        return {"src": torch.zeros(3, 32, 32), "frames": self.frames[i]}


def test_ch05_baselines_are_scored_by_the_same_code() -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.rand(5, 12, 1, 32, 32, generator=g) * 2 - 1
    test = torch.rand(3, 12, 1, 32, 32, generator=g) * 2 - 1
    out = r05.f2v.evaluate_baselines(_Videos(train), _Videos(test), seed=1, features="random", fvd_dims=8)
    mean01 = ((train + 1) / 2).mean(0, keepdim=True).expand(3, -1, -1, -1, -1)
    direct = r05.f2v.score_videos((test + 1) / 2, mean01, "random", 8)
    assert out[ev.BASELINES[0]]["PSNR"] == pytest.approx(direct["PSNR"])
    assert out[ev.BASELINES[0]]["SSIM"] == pytest.approx(direct["SSIM"])
    # the mean is the MSE-optimal constant: it beats a random training video in PSNR on i.i.d. noise
    assert out[ev.BASELINES[0]]["PSNR"] > out[ev.BASELINES[1]]["PSNR"]


# -- chapter 04 --------------------------------------------------------------------------------------
def test_ch04_stage_steps_match_the_schedules() -> None:
    # quick: Eq. 18 pretraining 240 steps (G needs that long to use one_hot(i)), a short adversarial phase; the
    # structure VAE 4x the base schedule (struct_x: it needs ~960 steps to reconstruct the skull ring)
    assert r04.stage_steps(r04.PRESETS["quick"]) == {
        "structure": 960,
        "translator": 60,
        "segmenter": 150,
        "pretrain": 240,
        "adversarial": 30,
    }
    assert r04.stage_steps(r04.PRESETS["standard"])["structure"] == 960  # 2 x 480
    full = r04.stage_steps(r04.PRESETS["full"])  # Sec. 5.2.1: 200 epochs per stage, 100 for the segmenter
    assert full["translator"] == full["structure"] == full["pretrain"] == full["adversarial"] == 2 * full["segmenter"]
    # normalised Sobel maps (the author's code): one alpha at every size; Alg. 2's p (10 px at 184 px) scales
    assert r04.alg1_for(64) == r04.alg1_for(240) and r04.alg1_for(64)["alpha"] == pytest.approx(0.035)
    assert r04.alg2_for(184)["p"] == 10 and r04.alg2_for(64)["p"] == 3


def _record04(
    d: dict,
    fid: dict[str, float],
    gt: float,
    copy: float,
    div: tuple[float, float] = (0.15, 0.17),
    con: tuple[float, float] = (0.05, 0.1),
) -> dict:
    return {
        "diversity": {"pairwise_generated": div[0], "pairwise_real": div[1]},
        "contrast": {"error": con[0], "error_same": con[1]},
        "table5": {
            "rows": [{"NO.": k, "dice": v} for k, v in d.items()],
            "baselines": {ev.BASELINES[0]: {"dice": 0.05}, ev.BASELINES[1]: {"dice": 0.2}},
        },
        "quality": {k: {"FID": v} for k, v in fid.items()},
        "translator": {"G_t": {"SSIM": gt}, "copy the input": {"SSIM": copy}},
        "ablation": {"A": {"FID": fid["A"]}, "F": {"FID": fid["F (full)"]}},
    }


def test_ch04_claims_follow_table5() -> None:
    thesis = {row[0]: row[-1] for row in r04.TABLE5}
    assert thesis.pop("6c") is None  # the control has no thesis value
    thesis["6c"] = 0.85
    rec = _record04(thesis, {"F (full)": 1.0, ev.BASELINES[0]: 3.0, "A": 2.0}, 0.8, 0.5)
    assert set(_verdicts(r04.claims(("A", "F")), rec)) == {ev.SUPPORTED}
    worse = copy.deepcopy(thesis)
    worse.update({6: 0.5, 3: 0.95, 25: 0.8, 24: 0.95, "6c": 0.6, 21: 0.99})
    # a collapsed structure generator (pairwise 0.001 vs 0.17) and four identical modalities (error > same)
    rec_bad = _record04(worse, {"F (full)": 3.0, ev.BASELINES[0]: 1.0, "A": 1.0}, 0.3, 0.5, (0.001, 0.17), (0.2, 0.1))
    verdicts = _verdicts(r04.claims(("A", "F")), rec_bad)
    assert verdicts.count(ev.CONTRADICTED) == len(verdicts) - 1  # the "beats the mean label" claim still holds
    assert len(r04.claims(("C", "F"))) == len(r04.claims(("A", "F"))) - 1


class _FakeTranslator:
    """G_t that returns its input: its scores must equal the copy-the-input row."""

    def __init__(self) -> None:
        self.nets = {"G_t": torch.nn.Identity()}
        self.nets["G_t"].register_parameter("w", torch.nn.Parameter(torch.zeros(1)))
        self.nets["G_t"].forward = lambda x, cond: x


def test_ch04_translator_scores_compare_with_the_registered_target() -> None:
    g = torch.Generator().manual_seed(0)

    class D:
        x01 = torch.rand(3, 4, 16, 16, generator=g)

    test, train = D(), D()
    out = r04.translator_scores(_FakeTranslator(), train, test)
    assert out["G_t"] == pytest.approx(out["copy the input"])
    assert set(out) == {"G_t", "copy the input", ev.BASELINES[0]}
    from medsynth.metrics import psnr

    direct = np.mean(
        [float(psnr(test.x01[:, i : i + 1], test.x01[:, j : j + 1])) for i in range(4) for j in range(4) if i != j]
    )
    assert out["copy the input"]["PSNR"] == pytest.approx(direct, rel=1e-5)


# -- shared helpers -----------------------------------------------------------------------------------
def test_show_source_and_jsonable_presets() -> None:
    code = show_source(ev.beats)
    assert "def beats" in code.data and code._repr_html_() and "def beats" in repr(code)
    assert _jsonable(r01.PRESETS["quick"])["steps"] == 100


def test_reference_collect(tmp_path: Path) -> None:
    from medsynth.reference import collect, environment

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        collect(run, tmp_path / "res", {})
    (run / "metrics.json").write_text("{}")
    (run / "claims.md").write_text("| claim |")
    (run / "fig_a.png").write_bytes(b"png")
    (run / "checkpoint.pt").write_bytes(b"x")
    dest = tmp_path / "res"
    dest.mkdir()
    (dest / "fig_old.png").write_bytes(b"old")
    from medsynth.reference import git_commit

    env = environment("standard", 12.3, "cpu", git_commit())
    files = collect(run, dest, env)
    assert sorted(p.name for p in dest.iterdir()) == ["claims.md", "env.json", "fig_a.png", "metrics.json"]
    assert len(files) == 4 and json.loads((dest / "env.json").read_text())["preset"] == "standard"
    assert env["wall_seconds"] == 12.3 and env["torch"] == torch.__version__
    assert env["commit"] is None or len(env["commit"].split("+")[0]) == 40


def test_ch05_knowledge_mask_margin_is_precision_minus_chance() -> None:
    first = np.zeros((32, 32))
    last = np.zeros((32, 32))
    last[:8, :8] = 1.0  # a bright leak: |last - first| = 255 > 45 there
    true = last > 0.5
    margins = r05.knowledge_mask_margins([(first, last, true)])
    assert margins == [pytest.approx(1.0 - 64 / 1024)]  # the mask is exactly the leak: precision 1
    wrong = np.zeros((32, 32), bool)
    wrong[-8:, -8:] = True
    assert r05.knowledge_mask_margins([(first, last, wrong)]) == [pytest.approx(0.0 - 64 / 1024)]
    row = ev.evaluate_claims([r05.knowledge_mask_claim()], [{"km_margins": [0.5, 0.6, 0.7, 0.4]}])[0]
    assert row["verdict"] == ev.SUPPORTED


@pytest.mark.slow
def test_ch04_run_seed_end_to_end_tiny(tmp_path: Path) -> None:
    """The standard preset's other seeds go through run_seed: every stage, every row, every baseline."""
    import dataclasses

    from medsynth.models.structsynth.data import BrainStructDataset

    p = dataclasses.replace(
        presets.choose(r04.PRESETS, "quick", steps=8, image_size=32), n_train=8, n_test=4, t5_epochs=1, rows=("A", "F")
    )
    kw = dict(alg1=r04.alg1_for(32), alg2=r04.alg2_for(32))
    train, test = BrainStructDataset(range(8), 32, **kw), BrainStructDataset(range(100, 104), 32, **kw)
    rec = r04.run_seed(p, 1, train, test, tmp_path, "cpu", "random", 64)
    assert [r["NO."] for r in rec["table5"]["rows"]] == [no for no, *_ in r04.TABLE5]
    assert {"pairwise_generated", "pairwise_real", "nearest_generated"} <= set(rec["diversity"])
    assert len(rec["contrast"]["generated"]) == len(rec["contrast"]["tissues"]) >= 4
    assert set(rec["ablation"]) == {"A", "F"} and set(rec["table5"]["baselines"]) == set(ev.BASELINES[:2])
    q = rec["quality"]
    assert q["unseen real slices"]["FID"] < q[ev.BASELINES[0]]["FID"]  # real images beat a constant image
    assert (tmp_path / "seed1" / "ablation_A_adversarial").is_dir()
    rows = ev.evaluate_claims(r04.claims(p.rows), [rec])
    assert len(rows) == len(r04.claims(p.rows)) and {r["verdict"] for r in rows} == {ev.INCONCLUSIVE}


def test_ch04_quality_uses_one_feature_network_for_every_seed() -> None:
    """FIDs of different training seeds are measured with the same random Inception (``feature_seed``)."""
    from medsynth.models.structsynth.data import BrainStructDataset

    train, test = BrainStructDataset(range(6), 32), BrainStructDataset(range(50, 53), 32)
    x = torch.rand(4, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a, b = r04.Quality(train, test, 0, "random", 64)(x, "a"), r04.Quality(train, test, 1, "random", 64)(x, "b")
    assert a["FID"] == pytest.approx(b["FID"]) and a["KID"] == pytest.approx(b["KID"])
    c = r04.Quality(train, test, 0, "random", 64, feature_seed=5)(x, "c")
    assert c["FID"] != pytest.approx(a["FID"])


def test_ch05_presets_follow_the_official_lr_schedule() -> None:
    """Official train.py: niter=10, niter_decay=40 epochs -> constant for 1/5 of training, then linear to 0."""
    for p in r05.PRESETS.values():
        assert p.lr_decay_from == pytest.approx(0.2)
