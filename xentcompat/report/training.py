"""The report's training section, from a training document (training.json, or a merged document's `training`).

    markdown_section(training, plots=None, findings=None) -> list[str]   Markdown lines
    html_section(training, out_dir=None, findings=None) -> str           HTML, the plots inline
    decision_lines(training) -> dict[str, str]                           api id -> decision-table sentence
    write_plots(training, out_dir) -> list[Path]                         the SVG files markdown_section links
    html_page(training) -> str                                           the section as a page of its own

Both renderers format one list of blocks (headings, paragraphs, lists, tables, figures) built from the numbers by
`training_facts` and `training_claims`. A variant links the numerical findings of its mechanism (`XC-<cause>`);
`findings`, when given (the finding ids of the report it goes into), keeps only the links that lead somewhere.
"""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path

from xentcompat.report.training_claims import decision_lines, regime_title, standard_claims, stress_claims
from xentcompat.report.training_facts import (KIND_NAMES, backend_label, errors, final, gradient_ratio, groups, kinds,
                                              nonfinite_rows, percent, regime_info, regime_rows, regimes, spread,
                                              spread_text, targets, variant_run)
from xentcompat.report.training_plots import accuracy_figure
from xentcompat.results.documents import write_text_atomic

__all__ = ["decision_lines", "html_page", "html_section", "markdown_section", "write_plots"]
TITLE = "Training evidence: what each loss does to learning"
STANDARD = "standard"


def _plot_name(regime: str) -> str:
    return f"accuracy-{re.sub(r'[^A-Za-z0-9_.-]', '_', regime)}.svg"


def write_plots(training: dict, out_dir) -> list[Path]:
    """One SVG per regime in `out_dir` (test accuracy per epoch, a panel per framework)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for regime in regimes(training):
        path = out_dir / _plot_name(regime)
        write_text_atomic(path, accuracy_figure(training, regime, standalone=True) + "\n")
        written.append(path)
    return written


# ---------------------------------------------------------------- blocks


def _links(causes, findings) -> str:
    ids = [f"XC-{cause}" for cause in causes]
    ids = [i for i in ids if findings is None or i in findings]
    return ", ".join(f"[{i}](#{i.lower()})" for i in ids)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _intro(training: dict) -> str:
    config = training.get("config", {})
    optimizer = config.get("optimizer", {})
    seeds = len(config.get("seeds", []))
    return (f"{config.get('model', 'An MLP')} on `{config.get('dataset', {}).get('name', 'the digits')}`, SGD "
            f"(momentum {optimizer.get('momentum', '?')}), batch {config.get('batch_size', '?')}, {seeds} "
            f"seed{'s' * (seeds != 1)} × {config.get('epochs', '?')} epochs per variant and regime. "
            f"{_sentence(config.get('initialisation', ''))}. Batch order: {config.get('data_order', '')}. "
            + _same_start(training) + _machines(training))


def _machines(training: dict) -> str:
    machines = {str(r.get("machine")) for r in training.get("runs", [])}
    return (f" Runs from {len(machines)} machines are pooled: a seed counts once per machine that ran it."
            if len(machines) > 1 else "")


def _same_start(training: dict) -> str:
    """Whether the runs of one seed started from one set of weights, from their recorded digests."""
    digests: dict[int, set[str]] = {}
    for run in training.get("runs", []):
        if not run.get("error"):
            digests.setdefault(run["seed"], set()).add(run["initial_weights_sha256"])
    differing = sorted(seed for seed, found in digests.items() if len(found) > 1)
    runs = sum(1 for r in training.get("runs", []) if not r.get("error"))
    if differing:
        return f"The initial weights differ between runs of seed {', '.join(map(str, differing))}."
    return (f"Each seed's {runs // max(len(digests), 1)} runs started from the same weights (one initial-weights "
            "digest per seed).") if digests else ""


def _accuracy_table(training: dict, findings) -> tuple:
    names = regimes(training)
    header = ["framework", "variant", "expression", *(regime_title(training, g) for g in names), "numerical findings"]
    found, rows = groups(training), []
    for target in targets(training):
        for kind in kinds(training, target):
            run = variant_run(training, target, kind)
            cells = [spread_text(spread(final(found.get((target, g, kind), []), "test_accuracy")))
                     if (target, g, kind) in found else "—" for g in names]
            rows.append([backend_label(target, run), f"{KIND_NAMES.get(kind, kind)}: `{run['api']}`",
                         f"`{run['expression']}`", *cells,
                         _links(run.get("causes", ()), findings)])
    return ("table", header, rows)


def _gradient_table(training: dict) -> tuple | None:
    rows = []
    for target in targets(training):
        found = gradient_ratio(training, target, STANDARD if STANDARD in regimes(training) else regimes(training)[0])
        if found:
            run = variant_run(training, target, "fused")
            rows.append([backend_label(target, run), _norm(found["fused"]), _norm(found["double"]),
                         _times(found["ratio_first"]), _times(found["ratio"])])
    header = ["framework", "fused ‖∂L/∂z‖", "double softmax ‖∂L/∂z‖", "ratio, first epoch", "ratio, all epochs"]
    return ("table", header, rows) if rows else None


def _norm(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "not finite"


def _times(value: float) -> str:
    return f"{value:.2f}×" if math.isfinite(value) else "—"


def _regime_table(training: dict, regime: str) -> tuple:
    dtype = regime_info(training, regime).get("dtype", "the dtype")
    header = ["framework", "variant", "final test accuracy", "non-finite (seeds)", "largest logit spread",
              "rows below the 1e-7 clip (worst epoch)", f"rows with a p_j = 0 in {dtype} (worst epoch)",
              "‖∂L/∂z‖ ÷ fused"]
    rows = [[row.label, f"`{row.api}`", spread_text(row.accuracy),
             f"{row.nonfinite.seeds_hit} of {row.nonfinite.seeds}" if row.nonfinite else "—",
             f"{row.logit_spread:.0f}" if math.isfinite(row.logit_spread) else "—", percent(row.below_clip, 2),
             percent(row.prob_underflow, 2), _times(row.grad_ratio)] for row in regime_rows(training, regime)]
    return ("table", header, rows)


def _nonfinite_block(training: dict) -> list[tuple]:
    rows = nonfinite_rows(training)
    if not rows:
        return [("p", "No run met a non-finite loss or gradient.")]
    return [("table", ["regime", "framework", "variant", "seeds with a non-finite step", "first at step (median)",
                       "non-finite steps"],
             [[regime_title(training, r.regime), backend_label(r.target, variant_run(training, r.target, r.kind)),
               f"`{r.api}`", f"{r.seeds_hit} of {r.seeds}", f"{r.first_step:.0f}", str(r.steps)] for r in rows])]


def _blocks(training: dict, plots: str | None, findings, inline_figures: bool) -> list[tuple]:
    config = training.get("config", {})
    blocks = [("h2", TITLE), ("p", _intro(training))]
    if not regimes(training):
        return blocks + [("p", "No framework trained in this run."), ("h3", "Wall time"), _wall_table(training)]
    blocks += [("ul", standard_claims(training))] if standard_claims(training) else []
    blocks += [("h3", "Final test accuracy"),
               ("p", f"Mean ± standard deviation over the seeds (lowest–highest seed) after {config.get('epochs')} "
                     "epochs, per framework, variant and regime."), _accuracy_table(training, findings)]
    gradient = _gradient_table(training)
    if gradient:
        blocks += [("h3", "Gradient reaching the output layer"),
                   ("p", f"{_sentence(config.get('grad_norm', ''))}; the double softmax against the fused loss, "
                         f"{regime_title(training, STANDARD)}."), gradient]
    for regime, claims in stress_claims(training):
        blocks += [("h3", f"Stress regime: {regime_title(training, regime)}"),
                   ("p", regime_info(training, regime).get("description", "")), ("ul", claims),
                   _regime_table(training, regime)]
    blocks += [("h3", "Non-finite steps"), ("p", _sentence(config.get("nonfinite", "")) + "."),
               *_nonfinite_block(training)]
    if inline_figures or plots:
        blocks.append(("h3", "Accuracy curves"))
        blocks += [("figure", regime, plots) for regime in regimes(training)]
    raised = errors(training)
    if raised:
        blocks += [("h3", "Runs that raised"), ("ul", raised_lines(raised))]
    blocks += [("h3", "Wall time"), _wall_table(training)]
    environments = [f"{e.get('target')}: " + ", ".join(f"{k} {v}" for k, v in e.get("frameworks", {}).items())
                    + f"; Python {e.get('python')}" for e in training.get("environments", [])]
    blocks += [("ul", environments)] if environments else []
    return blocks


def raised_lines(raised: list[dict]) -> list[str]:
    """One line per target, regime and error: the runs (APIs and seeds) that raised it."""
    groups: dict[tuple, list[dict]] = {}
    for run in raised:
        key = (run["target"], run["regime"], run["error"]["type"], run["error"]["message"])
        groups.setdefault(key, []).append(run)
    lines = []
    for (target, regime, kind, message), runs in groups.items():
        apis = ", ".join(f"`{api}`" for api in dict.fromkeys(run["api"] for run in runs))
        seeds = ", ".join(str(seed) for seed in sorted({run["seed"] for run in runs}))
        count = f"{len(runs)} run{'s' if len(runs) > 1 else ''}"
        seeds = f"seed{'s' if ',' in seeds else ''} {seeds}"
        lines.append(f"{target} {regime}, {count} ({apis}; {seeds}): {kind}: {message}")
    return lines


def _wall_table(training: dict) -> tuple:
    rows = []
    for target in training.get("targets", []):
        if target.get("skipped"):
            rows.append([target["name"], "skipped", "—", target["skipped"]])
            continue
        seconds = target.get("train_seconds")
        note = target.get("failed") or ""
        rows.append([target["name"], f"{target.get('wall_seconds', 0):.1f} s",
                     f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "—",
                     f"{target.get('runs', 0)} runs" + (f"; {note}" if note else "")])
    return ("table", ["target", "worker process", "training", "runs"], rows)


# ---------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_section(training: dict, plots: str | None = None, findings=None) -> list[str]:
    """The section as Markdown lines. `plots`: the folder (relative to the Markdown file) where `write_plots`
    put the figures, to link them; without it the figures are left out."""
    lines: list[str] = []
    for block in _blocks(training, plots, findings, inline_figures=False):
        kind = block[0]
        if kind in ("h2", "h3"):
            lines += [f"{'#' * int(kind[1])} {block[1]}", ""]
        elif kind == "p" and block[1]:
            lines += [block[1], ""]
        elif kind == "ul" and block[1]:
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            _, header, rows = block
            lines += ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows] + [""]
        elif kind == "figure" and block[2]:
            lines += [f"![test accuracy per epoch, {block[1]}]({block[2]}/{_plot_name(block[1])})", ""]
    return lines


# ---------------------------------------------------------------- HTML


def _inline(text: str) -> str:
    """Escaped text with `code` spans and [text](#anchor) links of the blocks as HTML."""
    html = escape(str(text))
    html = re.sub(r"\[([^\]]+)\]\((#[^)\s]+)\)", r'<a class="finding-link" href="\2">\1</a>', html)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)


def html_section(training: dict, out_dir=None, findings=None) -> str:
    """The section as HTML, every figure inline (self-contained); with `out_dir`, the figures are also written
    there as SVG files (`write_plots`)."""
    if out_dir is not None:
        write_plots(training, out_dir)
    parts = ['<section id="training">']
    for block in _blocks(training, None, findings, inline_figures=True):
        kind = block[0]
        if kind in ("h2", "h3"):
            parts.append(f"<{kind}>{escape(block[1])}</{kind}>")
        elif kind == "p" and block[1]:
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "ul" and block[1]:
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            _, header, rows = block
            head = "".join(f"<th>{_inline(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            parts.append(f'<div class="scroll"><table class="training"><thead><tr>{head}</tr></thead>'
                         f"<tbody>{body}</tbody></table></div>")  # wider than a window: scrolls on its own
        elif kind == "figure":
            parts.append(f'<figure class="training-plot">{accuracy_figure(training, block[1])}'
                         f"<figcaption>Test accuracy per epoch, {escape(regime_title(training, block[1]))}: "
                         "the mean over seeds, the band from the lowest to the highest seed.</figcaption></figure>")
    return "\n".join(parts + ["</section>"])


PAGE_CSS = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:100rem;color:#1f2328}"
            "table{border-collapse:collapse;margin:0.5rem 0 1.2rem}td,th{border:1px solid #d0d7de;padding:3px 7px;"
            "font-size:0.9rem;text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-size:0.85rem}"
            "figure{margin:0.5rem 0 1.5rem}figcaption{font-size:0.85rem;color:#4a535c}.scroll{overflow-x:auto}")


def html_page(training: dict) -> str:
    """The training section as a self-contained page (training.html)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(TITLE)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n"
            + html_section(training) + "\n</main>\n</body>\n</html>\n")
