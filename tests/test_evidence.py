"""Baselines, claims and verdicts: hand-made numbers cover every verdict of every rule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medsynth import evidence as ev
from medsynth import presets
from medsynth.nbutils import read_reference, write_claims


def _claim(rule: str = "sign", **kw) -> ev.Claim:
    return ev.Claim("A beats B", "A < B (Table 1)", lambda r: r["d"], "B - A", rule=rule, **kw)


def _runs(*values) -> list[dict]:
    return [{"d": v} for v in values]


@pytest.mark.parametrize(
    "values, verdict",
    [
        ((0.5, 0.1, 2.0), ev.SUPPORTED),
        ((-0.5, -0.1, -2.0), ev.CONTRADICTED),
        ((0.5, -0.1, 2.0), ev.INCONCLUSIVE),  # mixed signs
        ((0.5, 0.1), ev.INCONCLUSIVE),  # two seeds < min_seeds
        ((5.0,), ev.INCONCLUSIVE),  # one seed: never "supported"
        ((0.5, float("nan"), 2.0), ev.INCONCLUSIVE),
    ],
)
def test_sign_rule(values, verdict) -> None:
    row = ev.evaluate_claims([_claim()], _runs(*values))[0]
    assert row["verdict"] == verdict
    assert row["per_seed"][0] == values[0] and f"n={len(values)}" in row["this_run"]


def test_sign_rule_margin_and_min_seeds_are_used() -> None:
    assert ev.evaluate_claims([_claim(margin=0.2)], _runs(0.5, 0.1, 2.0))[0]["verdict"] == ev.INCONCLUSIVE
    assert ev.evaluate_claims([_claim(margin=0.2)], _runs(-0.5, -0.3, -2.0))[0]["verdict"] == ev.CONTRADICTED
    assert ev.evaluate_claims([_claim(min_seeds=2)], _runs(0.5, 0.1))[0]["verdict"] == ev.SUPPORTED
    assert "> 0.2 on all of >= 3 seeds" == _claim(margin=0.2).rule_text()


def test_mean_and_sd_shown_are_the_sample_statistics() -> None:
    row = ev.evaluate_claims([_claim()], _runs(1.0, 2.0, 3.0))[0]
    assert row["this_run"] == "2 ± 1 (n=3)"


@pytest.mark.parametrize(
    "values, verdict",
    [
        ((0.01, -0.02, 0.03), ev.SUPPORTED),
        ((0.2, 0.3, 0.1), ev.CONTRADICTED),
        ((-0.2, -0.3, -0.1), ev.CONTRADICTED),
        ((0.2, -0.3, 0.01), ev.INCONCLUSIVE),
        ((0.01, 0.0), ev.INCONCLUSIVE),
    ],
)
def test_within_rule(values, verdict) -> None:
    assert ev.evaluate_claims([_claim("within", tol=0.05)], _runs(*values))[0]["verdict"] == verdict


def test_within_rule_needs_a_tolerance_and_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="tol"):
        _claim("within")
    with pytest.raises(ValueError, match="rule"):
        _claim("majority")


def test_bootstrap_rule() -> None:
    rng = np.random.default_rng(0)
    good = [{"d": rng.normal(1.0, 1.0, 50)} for _ in range(3)]
    bad = [{"d": rng.normal(-1.0, 1.0, 50)} for _ in range(3)]
    noise = [{"d": np.array([1.0, -1.0] * 25)} for _ in range(3)]
    c = _claim("bootstrap")
    assert ev.evaluate_claims([c], good)[0]["verdict"] == ev.SUPPORTED
    assert ev.evaluate_claims([c], bad)[0]["verdict"] == ev.CONTRADICTED
    assert ev.evaluate_claims([c], noise)[0]["verdict"] == ev.INCONCLUSIVE
    assert ev.evaluate_claims([c], good[:1])[0]["verdict"] == ev.INCONCLUSIVE  # one seed, by rule


def test_missing_statistic_names_the_claim() -> None:
    with pytest.raises(KeyError, match="A beats B"):
        ev.evaluate_claims([_claim()], [{"other": 1.0}])


def test_table_and_summary_are_written_from_the_rows(tmp_path: Path) -> None:
    rows = ev.evaluate_claims([_claim(), _claim("within", tol=0.1)], _runs(0.5, 0.4, 0.3))
    md = ev.claims_markdown(rows)
    assert md.count("\n") == 3 and "**supported**" in md and "**contradicted**" in md
    assert ev.claims_summary(rows) == "Of 2 claims tested on 3 seed(s): 1 supported, 1 contradicted, 0 inconclusive."
    assert write_claims(tmp_path, md).read_text().startswith("| claim |")


def test_ranking_sentence_orders_by_the_numbers() -> None:
    vals = {"a": 3.0, "b": 1.0, "c": 2.0}
    assert (
        ev.ranking_sentence(vals, "FID", higher_is_better=False)
        == "By FID (lower is better) this run ranks: b (1) > c (2) > a (3)."
    )
    assert ev.ranking_sentence(vals, "SSIM", higher_is_better=True).endswith("a (3) > c (2) > b (1).")
    assert ev.beats(0.5, 0.4) and not ev.beats(0.5, 0.4, higher_is_better=False)


def test_baselines_by_position() -> None:
    # 3 training images x 2 positions; position k of image i holds the value 10*i + k
    train = torch.tensor([10.0 * i + k for i in range(3) for k in range(2)]).reshape(6, 1, 1, 1)
    inputs = torch.full((5, 1, 1, 1), 7.0)
    out = ev.baseline_predictions(train, n=5, seed=3, period=2, inputs=inputs)
    assert list(out) == list(ev.BASELINES)
    # mean over images at the same position: 10 + k
    assert out["mean training target"].flatten().tolist() == [10.0, 11.0, 10.0, 11.0, 10.0]
    rnd = out["random training target"].flatten()
    assert all(int(v) % 10 == i % 2 for i, v in enumerate(rnd))  # same position
    assert set(int(v) // 10 for v in rnd) <= {0, 1, 2}
    assert torch.equal(out["copy the input"], inputs)
    again = ev.baseline_predictions(train, n=5, seed=3, period=2)
    assert torch.equal(again["random training target"], out["random training target"])  # seeded
    assert "copy the input" not in again
    other = ev.baseline_predictions(train, n=50, seed=4, period=2)["random training target"].flatten()
    assert len({int(v) // 10 for v in other}) == 3  # draws from every training image


def test_baselines_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="period"):
        ev.baseline_predictions(torch.zeros(5, 1, 2, 2), n=2, period=2)
    with pytest.raises(ValueError, match="inputs"):
        ev.baseline_predictions(torch.zeros(4, 1, 2, 2), n=2, inputs=torch.zeros(3, 1, 2, 2))


@dataclasses.dataclass(frozen=True)
class _P(presets.Preset):
    width: int = 8


def test_presets_choose_overrides_and_errors() -> None:
    table = {
        "quick": _P("quick", steps=10, batch_size=2, image_size=64, n_seeds=1),
        "standard": _P("standard", steps=100, batch_size=4, image_size=64, n_seeds=3, width=16),
    }
    p = presets.choose(table, "standard", steps=None, width=32)
    assert (p.steps, p.width, p.batch_size) == (100, 32, 4)
    assert presets.seeds_of(p, 5) == [5, 6, 7] and presets.seeds_of(table["quick"], 5) == [5]
    with pytest.raises(ValueError, match="'fast' unknown"):
        presets.choose(table, "fast")
    with pytest.raises(ValueError, match="widht"):
        presets.choose(table, "quick", widht=3)
    assert "steps=10" in table["quick"].describe()


def test_read_reference(tmp_path: Path) -> None:
    assert read_reference("01_x", tmp_path) is None
    (tmp_path / "01_x").mkdir()
    (tmp_path / "01_x" / "metrics.json").write_text(json.dumps({"a": 1}))
    assert read_reference("01_x", tmp_path) == {"a": 1}


def test_number_reads_live_results_and_their_json() -> None:
    from medsynth.metrics import MetricResult

    r = MetricResult(2.5, "FID", "random", 64, 4, 4)
    assert ev.number(r) == 2.5 and ev.number({"value": 2.5, "label": "x"}) == 2.5 and ev.number(0.25) == 0.25
