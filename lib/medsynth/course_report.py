"""What ``make course`` shows at the end: one table over the chapters and one offline page, ``index.html``.

The table reads each chapter's ``metrics.json``: its ``headline`` (written by
:func:`medsynth.evidence.headline`: main model vs the best input-free baseline on the primary metric) and its
computed ``claims`` (verdicts by :func:`medsynth.evidence.evaluate_claims`). The full flat dump stays in each
chapter's ``metrics.json``; nothing here computes a result, it only lays out what the chapters computed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsynth.evidence import SUPPORTED

# chapter -> its run module, whose ``headline(metrics)`` reads the chapter's own metrics.json
RUN_MODULES = {
    "01_fundus2angio": "medsynth.models.fundus2angio_run",
    "02_medgan": "medsynth.models.medgan_run",
    "03_retigan": "medsynth.models.retigan_run",
    "04_structure_maps": "medsynth.models.structsynth_run",
    "05_fundus2video": "medsynth.models.fundus2video_run",
}

COLUMNS = ("chapter", "primary metric", "model", "best baseline", "paper", "claims supported", "wall time")


def _num(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def chapter_headline(chapter: str, metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """``metrics["headline"]`` if the run wrote one, else the chapter's run module's ``headline(metrics)``;
    None for chapters without one (the 00 notebooks) or a metrics.json that lacks the numbers it needs."""
    if metrics.get("headline"):
        return dict(metrics["headline"])
    if chapter not in RUN_MODULES:
        return None
    import importlib

    try:
        return importlib.import_module(RUN_MODULES[chapter]).headline(dict(metrics))
    except (KeyError, TypeError):
        return None


def summary_row(chapter: str, metrics: Mapping[str, Any], wall_s: float | None, failed: bool = False) -> dict[str, str]:
    """One chapter's row of the course table (text cells; "—" where the chapter has no such number)."""
    row = dict.fromkeys(COLUMNS, "—")
    row["chapter"] = chapter
    row["wall time"] = "—" if wall_s is None else f"{wall_s:.0f} s"
    if failed:
        row["primary metric"] = "FAILED (see the executed notebook)"
        return row
    h = chapter_headline(chapter, metrics)
    if h:
        arrow = "↑" if h["higher_is_better"] else "↓"
        row["primary metric"] = f"{h['metric']} {arrow}"
        row["model"] = f"{h['model']} {_num(h['model_value'])}"
        if h.get("best_baseline"):  # the means only; whether a difference holds over seeds is the claims' job
            gap = abs(h["model_value"] - h["best_baseline_value"])
            side = "model ahead by" if h.get("beats_best_baseline") else "model BEHIND by"
            row["best baseline"] = f"{h['best_baseline']} {_num(h['best_baseline_value'])} ({side} {_num(gap)})"
        row["paper"] = h.get("paper") or "—"
    claims = metrics.get("claims") or []
    if claims:
        row["claims supported"] = f"{sum(c.get('verdict') == SUPPORTED for c in claims)}/{len(claims)}"
    return row


def summary_table(rows: list[dict[str, str]]) -> str:
    """The rows as an aligned plain-text table (what the terminal shows)."""
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS} if rows else {c: len(c) for c in COLUMNS}
    line = lambda r: " | ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip()  # noqa: E731
    return "\n".join(
        [line({c: c for c in COLUMNS}), "-+-".join("-" * widths[c] for c in COLUMNS)] + [line(r) for r in rows]
    )


def _claims_html(claims: list[Mapping[str, Any]]) -> str:
    if not claims:
        return "<p>This chapter tests no claims.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("claim", "paper", "this run", "verdict", "rule"))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c.get(k, '')))}</td>" for k in ("claim", "paper", "this_run", "verdict", "rule")
        )
        + "</tr>"
        for c in claims
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_index(run_dir: Path, rows: list[dict[str, str]], results: Mapping[str, Mapping[str, Any]]) -> Path:
    """``<run_dir>/index.html``: the course table, then per chapter its claims table and figures (``fig_*.png``
    in its folder), linked to the executed notebook. One offline file; images are referenced relatively."""
    esc = html.escape
    table = (
        "<table><tr>"
        + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{esc(r[c])}</td>" for c in COLUMNS) + "</tr>" for r in rows)
        + "</table>"
    )
    parts = [f"<h1>MedSynth course run</h1><p>{esc(str(run_dir))}</p>{table}"]
    for r in rows:
        ch = r["chapter"]
        folder = run_dir / ch
        figs = "".join(
            f'<figure><img src="{esc(ch)}/{esc(p.name)}" alt="{esc(p.stem)}"><figcaption>{esc(p.stem)}'
            f"</figcaption></figure>"
            for p in sorted(folder.glob("fig_*.png"))
        )
        parts.append(
            f'<h2 id="{esc(ch)}">{esc(ch)}</h2><p><a href="{esc(ch)}/{esc(ch)}.ipynb">executed notebook</a>'
            f' · <a href="{esc(ch)}/metrics.json">metrics.json</a></p>'
            + _claims_html(list(results.get(ch, {}).get("claims") or []))
            + figs
        )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}"
        "img{max-width:100%}figure{margin:1em 0}"
    )
    path = run_dir / "index.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>MedSynth course run</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n",
        encoding="utf-8",
    )
    return path
