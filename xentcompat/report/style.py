"""The stylesheet every HTML page of the report shares (report.html, bench.html)."""

CSS = """
:root { color-scheme: light; }
body { margin: 0; color: #1d2228; background: #ffffff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 28px 64px; overflow-wrap: break-word; }  /* a long name or link wraps on a phone */
h1 { font-size: 1.55em; margin: 0 0 .2em; }
h2 { font-size: 1.3em; margin: 2.2em 0 .6em; padding-bottom: .2em; border-bottom: 1px solid #d8dde3; }
h3 { font-size: 1.05em; margin: 1.6em 0 .4em; }
a { color: #0b57d0; }
code, pre, td.api { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .86em; }
pre code { font-size: 1em; }
pre { background: #f5f7f9; border: 1px solid #e1e5ea; border-radius: 4px; padding: 10px 12px; overflow-x: auto; }
.meta { color: #4a535c; margin: .2em 0; }
.cite { background: #f5f7f9; border-left: 3px solid #0b57d0; padding: 6px 10px; }
nav ul { display: flex; flex-wrap: wrap; gap: 2px 14px; list-style: none; padding: 0; margin: .4em 0 .8em; font-size: .85em; }
@media (max-width: 700px) { nav ul { flex-wrap: nowrap; overflow-x: auto; white-space: nowrap; } }  /* a phone: one line to swipe */
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .84em; overflow-wrap: normal; }  /* a table scrolls, never breaks a word */
th, td { border: 1px solid #d8dde3; padding: 3px 7px; vertical-align: top; text-align: left; }
thead th { background: #f0f3f6; position: sticky; top: 0; }
td.api, th.api { white-space: nowrap; text-align: left; }
td.api { font-size: 1em; }
.finding-link { white-space: nowrap; }
td.deviation { background: #fdeceb; font-weight: 600; }
td.o-raised { background: #e3f1fb; color: #0b4f7c; }
td.o-silent { background: #f6dcef; color: #7a1f5c; font-weight: 600; }
h2.first { margin-top: .4em; }
header h1 { margin-bottom: 0; }
details.cells summary { cursor: pointer; font-weight: 600; }
table.cells td:first-child { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
input.filter { font: inherit; margin: .5em 0; padding: 3px 6px; width: 30em; max-width: 100%; box-sizing: border-box; }
td.not-run { color: #9aa3ad; }
.new { color: #b00020; font-weight: 600; }
.finding { border: 1px solid #e1e5ea; border-radius: 6px; padding: 2px 16px 6px; margin: 14px 0; }
.finding:target { border-color: #0b57d0; box-shadow: 0 0 0 2px #c9dafc; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(432px, 100%), 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid #e1e5ea; border-radius: 4px; padding: 6px 6px 2px; }
figcaption { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
svg { display: block; max-width: 100%; height: auto; }
"""
