"""The report's plots: matplotlib figures as SVG text to embed inline (no file, no CDN).

Deterministic: no date in the metadata, a fixed hash salt; every id of a figure is prefixed
with the figure's name, so several SVGs can live in one page.
"""

from __future__ import annotations

import io
import re
from collections import Counter

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cartable.report.html import fr_number
from cartable.report.model import STATE_LABELS, STATES
from cartable.site_report import COLUMNS, FAMILIES

matplotlib.use("Agg")
COLOURS = ["#1f5fa8", "#e07b1a", "#3a9a4a", "#c43c39", "#8a63b8", "#7f7f7f", "#b8a21f"]
STATE_COLOURS = {"ok": "#3a9a4a", "failed": "#c43c39", "unreachable": "#e07b1a",
                 "running": "#1f5fa8", "pending": "#bdbdbd"}
MAX_BARS = 25
RC = {"svg.fonttype": "none", "svg.hashsalt": "cartable", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}


def _svg(fig: Figure, name: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="', f'id="{name}-', text)
    text = re.sub(r"url\(#", f"url(#{name}-", text)
    text = re.sub(r'href="#', f'href="#{name}-', text)
    return text.replace("<svg ", f'<svg class="plot" data-plot="{name}" role="img" ', 1)


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


def equipment_per_commune(communes: list[dict]) -> tuple[str, str]:
    """Stacked bars: each commune's equipment by family (the MAX_BARS best equipped)."""
    families = [f for f in FAMILIES if any(c[COLUMNS[f]] for c in communes)]
    ranked = sorted(communes, key=lambda c: (-sum(c[COLUMNS[f]] for f in FAMILIES),
                                             c["commune"]))
    shown = list(reversed(ranked[:MAX_BARS]))
    with matplotlib.rc_context(RC):
        fig = _figure(8, 1.2 + 0.28 * len(shown))
        ax = fig.add_subplot()
        left = [0] * len(shown)
        labels = [c["commune"] or c["code_commune"] for c in shown]
        for colour, family in zip(COLOURS, families):
            values = [c[COLUMNS[family]] for c in shown]
            ax.barh(labels, values, left=left, color=colour, label=FAMILIES[family])
            left = [a + b for a, b in zip(left, values)]
        ax.set_xlabel("matériels")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fr_number(v)))
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(families),
                  frameon=False)
    note = "" if len(communes) <= MAX_BARS else \
        f"Les {MAX_BARS} communes les mieux équipées sur {len(communes)} (toutes : tableau)."
    return _svg(fig, "equipement"), note


def pupils_per_workstation(schools: list[dict]) -> tuple[str, str]:
    """Bars, one per school with a known ratio, highest first."""
    known = sorted((s for s in schools if s["eleves_par_poste"] is not None),
                   key=lambda s: (-s["eleves_par_poste"], s["uai"]))
    with matplotlib.rc_context(RC):
        fig = _figure(8, 3.2)
        ax = fig.add_subplot()
        xs = list(range(len(known)))
        values = [s["eleves_par_poste"] for s in known]
        if len(known) <= 40:
            ax.bar(xs, values, color=COLOURS[0], width=0.8)
            ax.set_xticks(xs, [s["uai"] for s in known], rotation=60, ha="right")
        else:  # one filled outline, not hundreds of bars: lighter to draw and to load
            ax.stairs(values, [x - 0.5 for x in xs] + [len(xs) - 0.5], fill=True,
                      color=COLOURS[0])
            ax.set_xticks([])
            ax.set_xlabel(f"{len(known)} écoles, de la moins à la mieux équipée")
        ax.set_ylabel("élèves par poste pédagogique")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fr_number(v, 0 if v == int(v)
                                                                          else 1)))
        if known:
            mean = sum(s["eleves_par_poste"] for s in known) / len(known)
            ax.axhline(mean, color=COLOURS[3], linewidth=1, linestyle="--")
            ax.annotate(f"moyenne {fr_number(mean, 1)}", (len(known) - 0.5, mean),
                        ha="right", va="bottom", color=COLOURS[3])
    missing = len(schools) - len(known)
    note = "" if not missing else \
        (f"{missing} école(s) sans effectif connu ou sans poste pédagogique : "
         "absentes du graphique.")
    return _svg(fig, "eleves-par-poste"), note


def age_histogram(hist: dict[str, Counter]) -> tuple[str, str]:
    """Stacked bars: devices by full years of service, per family."""
    top = max((max(c) for c in hist.values() if c), default=0)
    ages = list(range(top + 1))
    with matplotlib.rc_context(RC):
        fig = _figure(8, 3.2)
        ax = fig.add_subplot()
        bottom = [0] * len(ages)
        for colour, family in zip(COLOURS, FAMILIES):
            if family not in hist:
                continue
            values = [hist[family].get(a, 0) for a in ages]
            ax.bar(ages, values, bottom=bottom, color=colour, label=FAMILIES[family])
            bottom = [a + b for a, b in zip(bottom, values)]
        ax.set_xticks(ages)
        ax.set_xlabel("âge (années révolues)")
        ax.set_ylabel("matériels")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 shown as "2"
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fr_number(v)))
        if hist:
            ax.legend(frameon=False)
    return _svg(fig, "age"), ""


def campaign_progress(by_wave: dict[str, Counter]) -> tuple[str, str]:
    """Stacked bars, one per wave: its schools by state."""
    waves = list(reversed(list(by_wave)))
    with matplotlib.rc_context(RC):
        fig = _figure(8, 1.2 + 0.4 * len(waves))
        ax = fig.add_subplot()
        left = [0] * len(waves)
        for state in STATES:
            values = [by_wave[w].get(state, 0) for w in waves]
            if any(values):
                ax.barh(waves, values, left=left, color=STATE_COLOURS[state],
                        label=STATE_LABELS[state])
                left = [a + b for a, b in zip(left, values)]
        ax.set_xlabel("écoles")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fr_number(v)))
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(STATES),
                  frameon=False)
    return _svg(fig, "campagne"), ""
