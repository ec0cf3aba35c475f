"""The "Speed and memory" section: one table per machine × device × shape × dtype, the APIs as rows (fastest
first), each time against the memory-bandwidth floor and the fastest API of that table; from bench.json alone."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from html import escape

from xentcompat.bench.floor import fastest, floor_seconds, ratio
from xentcompat.report.style import CSS

TITLE = "Speed and memory"
UNTIMED = "NoTimingPath: "  # an API whose adapter the bench has no timing path for
UNTIMED_TEXT = "Not timed (no timing path for its adapter)"
COLUMNS = ("API", "mode", "median ms", "min–max ms", "× floor", "× fastest", "peak MiB", "compile s")


@dataclass(frozen=True)
class Row:
    label: str
    mode: str
    median: float | None
    low: float | None
    high: float | None
    to_floor: float | None
    to_fastest: float | None
    peak_bytes: int | None
    compile_seconds: float | None
    error: str | None
    peak_at_least: bool = False  # an earlier measurement in the process left memory resident: a lower bound


@dataclass(frozen=True)
class Table:
    title: str
    floors: dict[str, float]  # targets kind ("labels", "probs") -> floor seconds
    rows: list[Row]


def bandwidths(bench: dict) -> dict[tuple[str, str], float]:
    return {(b["machine"], b["device"]): b["bytes_per_second"] for b in bench.get("bandwidth", [])}


def label(measurement: dict) -> str:
    return measurement["api"] + (f" [{measurement['backend']}]" if measurement.get("backend") else "")


def tables(bench: dict) -> list[Table]:
    groups = defaultdict(list)
    for m in bench.get("measurements", []):
        groups[(m["machine"], m["device"], m["rows"], m["classes"], m["dtype"])].append(m)
    several_places = len({key[:2] for key in groups}) > 1
    speeds = bandwidths(bench)
    return [_table(key, groups[key], speeds.get(key[:2]), several_places)
            for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] * k[3], k[2], _dtype_rank(k[4])))]


def _dtype_rank(dtype: str) -> int:
    return ("float32", "bfloat16", "float16").index(dtype) if dtype in ("float32", "bfloat16", "float16") else 9


def _table(key: tuple, measurements: list[dict], bandwidth: float | None, several_places: bool) -> Table:
    machine_id, device, rows, classes, dtype = key
    fastest_median = fastest([m.get("median_seconds") for m in measurements if not m.get("error")])
    floors = {m["targets"]: floor_seconds(m["bytes_to_move"], bandwidth) for m in measurements
              if bandwidth and not _untimed_error(m)}
    built = [_row(m, bandwidth, fastest_median) for m in measurements]
    built.sort(key=lambda r: (r.median is None, r.median or 0.0, r.label, r.mode))
    where = f", {device}" + (f" on {machine_id}" if several_places else "")
    return Table(f"N = {rows:,} × V = {classes:,}, {dtype}{where}", floors, built)


def _untimed_error(m: dict) -> bool:
    return bool(m.get("error")) and m["error"]["type"] == UNTIMED.removesuffix(": ")


_REPEATED_PREFIX = re.compile(r"((?:[^:]{1,80}: ))\1+")


def error_text(error: dict) -> str:
    """The error's type and first line, a prefix a framework repeats once per nesting level said once."""
    message = _REPEATED_PREFIX.sub(r"\1", error["message"])
    return f"{error['type']}: {message}"


def _row(m: dict, bandwidth: float | None, fastest_median: float | None) -> Row:
    if m.get("error"):
        error = error_text(m["error"])
        return Row(label(m), m["mode"], None, None, None, None, None, None, None, error)
    median = m["median_seconds"]
    to_floor = ratio(median, floor_seconds(m["bytes_to_move"], bandwidth)) if bandwidth else None
    return Row(label(m), m["mode"], median, m["min_seconds"], m["max_seconds"], to_floor,
               ratio(median, fastest_median), m.get("peak_bytes"), m.get("compile_seconds"), None,
               peak_at_least(m))


RESIDENT_SLACK = 64 * 2**20


def peak_at_least(m: dict) -> bool:
    """Whether the RSS before the inputs was well above the RSS after import (memory an earlier measurement in the
    same process left resident, which the peak above it does not count): the peak is then a lower bound."""
    before, baseline = m.get("rss_before_bytes"), m.get("baseline_rss_bytes")
    return before is not None and baseline is not None and before - baseline > RESIDENT_SLACK


def cells(row: Row) -> list[str]:
    """The row's values as text (the API and mode first); a row that could not run has dashes."""
    if row.error:
        return [row.label, row.mode] + ["—"] * (len(COLUMNS) - 2)
    return [row.label, row.mode, _ms(row.median), f"{_ms(row.low)}–{_ms(row.high)}", _times(row.to_floor),
            _times(row.to_fastest), _mib(row),
            "" if row.compile_seconds is None else f"{row.compile_seconds:.1f}"]


def _mib(row: Row) -> str:
    if row.peak_bytes is None:
        return "—"
    return ("≥" if row.peak_at_least else "") + f"{row.peak_bytes / 2**20:,.0f}"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def _times(value: float | None) -> str:
    return "—" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def intro(bench: dict) -> str:
    config = bench.get("config", {})
    speeds = "; ".join(f"{b['device']} {b['bytes_per_second'] / 1e9:.1f} GB/s ({b.get('method', 'measured')})"
                       for b in bench.get("bandwidth", []))
    counts = sorted({len(m["seconds"]) for m in bench.get("measurements", []) if m.get("seconds")})
    repeats = "/".join(map(str, counts)) or "?"
    caps = sorted({c["memory_limit_bytes"] for c in config.get("merged", [config]) if c.get("memory_limit_bytes")})
    capped = (f" Each worker's data segment was capped at {' or '.join(f'{c / 2**30:.1f}' for c in caps)} GiB "
              "(RLIMIT_DATA counts reserved virtual memory, so an allocation can fail with less than that "
              "resident)." if caps else "")
    return (f"Forward + backward of each API as users write it (reduction mean, default options) on normal logits "
            f"and int64 labels (or softmax probabilities), the inputs already on the device in the dtype: the "
            f"framework's call timed, no float64 conversion. Median and min–max of {repeats} timed calls after one "
            "warm-up call; a compiled mode's compile (its first call less the median) is shown apart. Floor: the "
            "bytes a fused kernel must move (read the logits, write their gradient, read the targets) over the "
            f"memory bandwidth measured in the same run: {speeds or 'not measured'}. Peak: the resident memory "
            "above that before the inputs were made, inputs included (on CUDA the framework's peak allocation); ≥ where "
            "memory an earlier measurement in the same process left resident makes it a lower bound. "
            f"Bench wall time {bench.get('wall_seconds', 0):.0f} s.{capped}")


def _floors_text(table: Table) -> str:
    kinds = {"labels": "labels", "probs": "probabilities"}
    return ", ".join(f"{_ms(s)} ms ({kinds.get(k, k)})" for k, s in sorted(table.floors.items())) or "unknown"


def _failures(table: Table) -> list[tuple[str, list[str]]]:
    """The rows that ran and failed (a shape the API could not hold, a framework error), grouped by the error."""
    grouped = defaultdict(list)
    for row in table.rows:
        if row.error and not row.error.startswith(UNTIMED):
            grouped[row.error].append(f"{row.label} ({row.mode})")
    return sorted(grouped.items())


def shown(table: Table) -> list[Row]:
    """The table's rows but those never timed (listed apart)."""
    return [row for row in table.rows if not (row.error and row.error.startswith(UNTIMED))]


def untimed(bench: dict) -> list[str]:
    """The APIs the bench has no timing path for (an adapter it does not know): named once, not as failures."""
    return sorted({label(m) for m in bench.get("measurements", []) if _untimed_error(m)})


def not_measured(bench: dict) -> list[str]:
    """Targets skipped or failed, and devices a target could not see, each with its reason."""
    found = []
    for target in bench.get("targets", []):
        reason = target.get("skipped") or target.get("failed")
        found += [f"{target['name']}: {reason}"] if reason else []
        found += [f"{target['name']}: {device}" for device in target.get("devices_skipped") or []]
    return found


def markdown_section(bench: dict) -> list[str]:
    lines = [f"## {TITLE}", "", intro(bench), ""]
    skipped = not_measured(bench)
    lines += ["Not measured: " + "; ".join(_md(s) for s in skipped) + ".", ""] if skipped else []
    never = untimed(bench)
    lines += [f"{UNTIMED_TEXT}: " + ", ".join(f"`{_md(u)}`" for u in never) + ".", ""] if never else []
    for table in tables(bench):
        lines += [f"### {table.title}", "", f"Floor {_floors_text(table)}.", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_md(c) for c in cells(row)) + " |" for row in shown(table)]
        failures = "; ".join(f"`{_md(error)}`: {', '.join(_md(r) for r in rows)}" for error, rows in _failures(table))
        lines += ["", f"Could not run: {failures}."] if failures else []
        lines.append("")
    return lines


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def html_section(bench: dict) -> str:
    parts = ['<section id="bench">', f"<h2>{TITLE}</h2>", f"<p>{escape(intro(bench))}</p>"]
    skipped = not_measured(bench)
    parts += [f"<p>Not measured: {escape('; '.join(skipped))}.</p>"] if skipped else []
    never = untimed(bench)
    parts += [f"<p>{UNTIMED_TEXT}: " + ", ".join(f"<code>{escape(u)}</code>" for u in never) + ".</p>"] if never else []
    for table in tables(bench):
        head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells(row)) + "</tr>" for row in shown(table))
        parts += [f"<h3>{escape(table.title)}</h3>", f"<p>Floor {escape(_floors_text(table))}.</p>",
                  f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>']
        failures = "; ".join(f"<code>{escape(error)}</code>: {escape(', '.join(rows))}"
                             for error, rows in _failures(table))
        parts += [f"<p>Could not run: {failures}.</p>"] if failures else []
    return "\n".join(parts + ["</section>"])


def html_page(bench: dict) -> str:
    """The section as a page of its own (bench.html)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{TITLE}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{html_section(bench)}\n"
            "</main>\n</body>\n</html>\n")
