"""Evidence: input-free baselines, a paper's claims checked over seeds, and the claims table.

A chapter's results only teach something when they are compared with what a predictor that
ignores the input achieves with the same metric code on the same test set, and when a claim
about a ranking rests on more than one seed. This module holds both halves, once for every chapter:

* :func:`baseline_predictions` -- the mean training target, a random other training target and,
  where input and target share a modality, the input itself.
* :class:`Claim` -- one claim of a paper that a run can test, with the statistic that decides it
  (oriented so that ``> 0`` means "the claim holds") and the rule that turns the per-seed values
  into a verdict; :func:`evaluate_claims` applies the rules, :func:`claims_markdown` renders
  the table (claim | paper | this run | verdict | rule) that opens every Discussion.
* :func:`ranking_sentence` -- outcome prose written from the numbers, never by hand.

Verdict rules (a claim resting on fewer than ``min_seeds`` seeds is "inconclusive" by rule):

``sign``       supported when the statistic is ``> margin`` on every seed, contradicted when it is
               ``< -margin`` on every seed, otherwise inconclusive.
``within``     (a claim of equality, "A ~ B") supported when ``|statistic| <= tol`` on every seed,
               contradicted when ``|statistic| > tol`` with one sign on every seed.
``bootstrap``  the statistic returns per-sample paired differences for each seed; they are pooled
               and a percentile bootstrap interval of their mean (``level``) decides: above 0
               supported, below 0 contradicted, covering 0 inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "baseline_predictions",
    "Claim",
    "evaluate_claims",
    "claims_markdown",
    "claims_summary",
    "ranking_sentence",
    "beats",
    "number",
    "SUPPORTED",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "BASELINES",
]

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
#: Row names of the input-free predictors, as they appear in tables and metrics.json.
BASELINES = ("mean training target", "random training target", "copy the input")


def baseline_predictions(
    train_targets: torch.Tensor, n: int, seed: int = 0, period: int = 1, inputs: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Predictions that never look at the test input, in the test set's geometry.

    ``train_targets`` (N*period, C, H, W): the training targets cut as the test targets are, in
    groups of ``period`` positions (e.g. the 4 quadrant crops of each image, in order); position
    ``k`` of test item ``i`` is ``i % period``. Returns ``n`` predictions per baseline:

    * ``"mean training target"`` -- the pixel-wise mean of the training targets at the same position
      (the best constant under squared error);
    * ``"random training target"`` -- a training target drawn at random (seeded) at the same position;
    * ``"copy the input"`` -- ``inputs`` unchanged, only when given (input and target share a modality).
    """
    if train_targets.dim() < 2 or len(train_targets) % period:
        raise ValueError(f"train_targets: {len(train_targets)} items is not a multiple of period={period}")
    grouped = train_targets.float().reshape(len(train_targets) // period, period, *train_targets.shape[1:])
    pos = torch.arange(n) % period
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(grouped.shape[0], (n,), generator=g)
    out = {BASELINES[0]: grouped.mean(0)[pos].clone(), BASELINES[1]: grouped[pick, pos].clone()}
    if inputs is not None:
        if len(inputs) != n:
            raise ValueError(f"inputs: expected {n} test inputs, got {len(inputs)}")
        out[BASELINES[2]] = inputs.float().clone()
    return out


@dataclass(frozen=True)
class Claim:
    """A claim of the paper that a run can test.

    ``stat(run)`` maps one seed's results (a Mapping) to the deciding number, oriented so that a
    positive value supports the claim (e.g. ``FID(pix2pix) - FID(Fundus2Angio)`` for "Fundus2Angio
    has the lower FID"); for ``rule="bootstrap"`` it returns that seed's per-sample differences.
    ``stat_name`` says in words what the number is; it heads the "this run" column.
    """

    text: str
    paper: str
    stat: Callable[[Mapping[str, Any]], Any]
    stat_name: str
    rule: str = "sign"
    margin: float = 0.0
    tol: float = 0.0
    min_seeds: int = 3
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.rule not in ("sign", "within", "bootstrap"):
            raise ValueError(f"Claim {self.text!r}: rule must be 'sign', 'within' or 'bootstrap', got {self.rule!r}")
        if self.rule == "within" and self.tol <= 0:
            raise ValueError(f"Claim {self.text!r}: rule 'within' needs tol > 0")

    def rule_text(self) -> str:
        if self.rule == "sign":
            return f"> {self.margin:g} on all of >= {self.min_seeds} seeds"
        if self.rule == "within":
            return f"|value| <= {self.tol:g} on all of >= {self.min_seeds} seeds"
        return f"{self.level:.0%} paired bootstrap interval of the mean, >= {self.min_seeds} seeds"


def _bootstrap_interval(x: np.ndarray, level: float, seed: int = 0, n_boot: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def _verdict(claim: Claim, values: list[Any]) -> tuple[str, str, list[float]]:
    """(verdict, shown value, per-seed numbers) for one claim."""
    if claim.rule == "bootstrap":
        per_seed = [np.asarray(v, dtype=float).ravel() for v in values]
        seeds = [float(v.mean()) for v in per_seed]
        pooled = np.concatenate(per_seed) if per_seed else np.zeros(0)
        lo, hi = _bootstrap_interval(pooled, claim.level) if len(pooled) else (math.nan, math.nan)
        shown = (
            f"{pooled.mean():.4g} [{lo:.4g}, {hi:.4g}] ({len(pooled)} samples, n={len(values)})"
            if len(pooled)
            else "n/a"
        )
        if len(values) < claim.min_seeds:
            return INCONCLUSIVE, shown + f"; fewer than {claim.min_seeds} seeds", seeds
        return (SUPPORTED if lo > 0 else CONTRADICTED if hi < 0 else INCONCLUSIVE), shown, seeds
    seeds = [float(v) for v in values]
    finite = [v for v in seeds if math.isfinite(v)]
    m = float(np.mean(finite)) if finite else math.nan
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    shown = f"{m:.4g}" + (f" ± {sd:.2g}" if math.isfinite(sd) else "") + f" (n={len(seeds)})"
    if len(finite) < claim.min_seeds or len(finite) < len(seeds):
        why = "a non-finite value" if len(finite) < len(seeds) else f"fewer than {claim.min_seeds} seeds"
        return INCONCLUSIVE, shown + f"; {why}", seeds
    if claim.rule == "sign":
        if all(v > claim.margin for v in seeds):
            return SUPPORTED, shown, seeds
        if all(v < -claim.margin for v in seeds):
            return CONTRADICTED, shown, seeds
        return INCONCLUSIVE, shown, seeds
    if all(abs(v) <= claim.tol for v in seeds):
        return SUPPORTED, shown, seeds
    if all(v > claim.tol for v in seeds) or all(v < -claim.tol for v in seeds):
        return CONTRADICTED, shown, seeds
    return INCONCLUSIVE, shown, seeds


def evaluate_claims(claims: Sequence[Claim], runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Apply each claim's rule to its statistic over ``runs`` (one results Mapping per seed).

    Returns one row per claim: ``claim``, ``paper``, ``statistic``, ``this_run`` (mean ± sd and n,
    or the bootstrap interval), ``per_seed``, ``verdict`` and ``rule``. A statistic that cannot be
    computed from a run (a missing key) is an error naming the claim, never a silent skip.
    """
    rows = []
    for c in claims:
        try:
            values = [c.stat(r) for r in runs]
        except (KeyError, IndexError, TypeError) as exc:
            raise KeyError(f"claim {c.text!r}: its statistic cannot be computed from the run ({exc!r})") from exc
        verdict, shown, per_seed = _verdict(c, values)
        rows.append(
            {
                "claim": c.text,
                "paper": c.paper,
                "statistic": c.stat_name,
                "this_run": shown,
                "per_seed": per_seed,
                "verdict": verdict,
                "rule": c.rule_text(),
            }
        )
    return rows


def claims_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The claims table as Markdown: claim | paper | this run | verdict | rule."""
    lines = ["| claim | paper | this run: statistic = value | verdict | rule |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['claim']} | {r['paper']} | {r['statistic']} = {r['this_run']} | **{r['verdict']}** | {r['rule']} |"
        )
    return "\n".join(lines)


def claims_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """One sentence counting the verdicts, e.g. "Of 4 claims: 1 supported, 0 contradicted, 3 inconclusive."."""
    n = {v: sum(r["verdict"] == v for r in rows) for v in (SUPPORTED, CONTRADICTED, INCONCLUSIVE)}
    seeds = sorted({len(r["per_seed"]) for r in rows})
    return (
        f"Of {len(rows)} claims tested on {'/'.join(map(str, seeds))} seed(s): {n[SUPPORTED]} supported, "
        f"{n[CONTRADICTED]} contradicted, {n[INCONCLUSIVE]} inconclusive."
    )


def number(x: Any) -> float:
    """A metric as a float, whether a live result object (``float()``-able) or its metrics.json dict."""
    return float(x["value"]) if isinstance(x, Mapping) else float(x)


def beats(model: float, baseline: float, higher_is_better: bool = True) -> bool:
    """Whether ``model`` is strictly better than ``baseline`` on a metric of the given direction."""
    return model > baseline if higher_is_better else model < baseline


def ranking_sentence(values: Mapping[str, float], metric: str, higher_is_better: bool, fmt: str = "{:.4g}") -> str:
    """The ranking of ``values`` (row -> number) as a sentence, best first: written from the numbers."""
    order = sorted(values, key=lambda k: values[k], reverse=higher_is_better)
    better = "higher" if higher_is_better else "lower"
    parts = [f"{k} ({fmt.format(values[k])})" for k in order]
    return f"By {metric} ({better} is better) this run ranks: " + " > ".join(parts) + "."


def headline(
    metric: str, higher_is_better: bool, model: str, values: Mapping[str, Any], paper: str = ""
) -> dict[str, Any]:
    """A chapter's one-line result for the course summary (``make course``): the main model's value of the
    primary metric beside the best input-free baseline's, from the same table ``values`` (row -> value).

    ``metric`` is the label as shown (say so when it is not comparable to the paper's, e.g. random features);
    ``paper`` the paper's own number for the model, as text, or "" where the paper has none.
    """
    if model not in values:
        raise KeyError(f"headline: model row {model!r} is not in the table (rows: {sorted(values)})")
    rows = {k: number(v) for k, v in values.items() if k in BASELINES}
    best = (max if higher_is_better else min)(rows, key=rows.get) if rows else None
    out = {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "model": model,
        "model_value": number(values[model]),
        "best_baseline": best,
        "best_baseline_value": rows.get(best),
        "paper": paper,
    }
    out["beats_best_baseline"] = None if best is None else beats(out["model_value"], rows[best], higher_is_better)
    return out
