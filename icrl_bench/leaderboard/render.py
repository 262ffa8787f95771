"""Publishing the board: ``leaderboard/README.md`` (markdown) and ``leaderboard/index.html`` (one offline file).

Ranking: only verified entries are ranked (only verification tests outcomes: a results file can be possible yet
invented), by suites covered, then by mean AUC over the suites they cover; each shows the key that signed it.
Unverified entries are listed apart, in a table of their own, never ranked. Privileged entries (shown the map) are
a ceiling, without a rank. Only valid submissions are rendered.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from icrl_bench.leaderboard.files import BoardFileError, write_board_file
from icrl_bench.leaderboard.submission import (
    UNSAFE_CATEGORIES,
    SubmissionError,
    read_json,
    safe_link,
    submission_paths,
    validate_board,
)
from icrl_bench.protocol.suites import DEFAULT_SUITES


def board_entries(paths: list[Path], board: str | Path = "leaderboard") -> list[dict[str, Any]]:
    """One row per submission, ranked (see the module docstring); raises if any submission is invalid (a
    verification block counts only where its signature checks against a key committed in ``BOARD/keys``)."""
    problems = validate_board(paths, board) if paths else []
    if problems:
        raise SubmissionError("fix the board before rendering it:\n  " + "\n  ".join(problems))
    rows = []
    for path in paths:
        data = read_json(path)
        results, meta, verification = data["results"], data["meta"], data.get("verification")
        summary = results["summary"]
        auc = {s: summary[s]["auc"] for s in DEFAULT_SUITES if s in summary}
        rows.append(
            {
                "slug": path.stem,
                "name": meta["name"],
                "authors": meta["authors"],
                "model_size": meta.get("model_size"),
                "link": _link(meta.get("code_url") or meta.get("paper_url")),
                "link_label": "code" if meta.get("code_url") else "paper",
                "verified": bool(verification and verification.get("verified")),
                "verified_date": verification.get("date") if verification else None,
                "key_id": verification.get("key_id") if verification else None,
                "trials": _trial_count(results),
                "privileged": results["agent"]["privileged"],
                "forced_exploration": results["protocol"].get("forced_exploration"),
                "auc": auc,
                "mean": sum(a["value"] for a in auc.values()) / len(auc) if auc else 0.0,
                "curves": {s: summary[s]["curve"] for s in auc},
            }
        )
    rows.sort(key=lambda r: (not r["verified"], r["privileged"], -len(r["auc"]), -r["mean"], r["name"]))
    rank = 0
    for row in rows:
        row["rank"] = (rank := rank + 1) if row["verified"] and not row["privileged"] else None
    return rows


GUIDE = """
## How to submit, step by step

1. Evaluate your agent on every default suite, default protocol (or `--forced-exploration paper`, shown on the
   board): `icrl-bench evaluate my_pkg.agent:MyAgent --out results/my-agent`.
2. Write the metadata as `meta.json` or flat `key: value` YAML: `name` and `authors` (required), `code_url`,
   `paper_url`, `model_size` (parameters, e.g. `8B` or `800000`), `training_data`, `compute`, `open_weights`
   (true/false).
3. `icrl-bench submit results/my-agent/results.json --name "My agent" --meta meta.yaml` checks everything and
   writes `leaderboard/submissions/my-agent.json`; it lists every problem if something is wrong.
4. `icrl-bench leaderboard render` rewrites this page and `index.html`; open a pull request with the three files.
5. A maintainer verifies it: `icrl-bench leaderboard verify leaderboard/submissions/my-agent.json --key-file - <
   verifier.pem`. Your agent (the one your results name, with their options) is re-run in an isolated child process (it
   sees only what the protocol gives) on fresh maps, with a seed derived from the verifier's private key; if the
   re-run does not show your results to be overstated (per suite, a one-sided Welch z-test that your AUC is above
   the re-run's, alpha 0.01, Bonferroni over suites, and yours at most 0.1 above it; a re-run that does better
   never fails an entry) the entry is marked verified. The block is signed (Ed25519) together with a hash of
   your whole entry, and checks against the public keys in `keys/`: any later edit makes the entry invalid
   until it is verified again (or its block is set to null: then it is listed as unverified).

## Submission schema (`submission_schema: 1`)

```
{"submission_schema": 1,
 "meta": {"name": str (<= 200 characters), "authors": str, "code_url": str|null, "paper_url": str|null,
          "model_size": str|int|null, "training_data": str|null, "compute": str|null, "open_weights": bool|null},
 "results": <results.json of `icrl-bench evaluate`, schema_version 1, unchanged>,
 "verification": null | {"verified": bool, "date": "YYYY-MM-DD", "key_id": hex16, "seed_sha256": hex64,
                         "trials": {suite: int}, "test": str, "suites": {suite: {"submitted_auc", "rerun_auc",
                         "difference", "p_value", "consistent"}}, "agent": {...}, "isolated": true,
                         "entry_hash": hex64, "signature": base64 Ed25519}}
```

Text fields are one line of plain text (no control or bidirectional-override characters); links are
`https://host/...` or a repository-relative path, without brackets, parentheses, quotes, spaces or backslashes.
Files are regular files of at most 20 MB (no links, FIFOs or directories); integers have at most 20 digits.

`icrl-bench leaderboard validate` checks every file: schema and types; suites, versions, task-list hashes and
trials against the installed package; every trial and episode present once with the seeds and task ids the suite
defines; every episode possible (success 0/1, steps within the limit, starts replayed from the environment's
random stream, no success faster than the shortest path, no fall before a hole is reachable, truncation only at
the limit, forced or invalid actions only where the protocol allows them); every summary number recomputed from
the records; no duplicate of an existing entry (the same records in any order count as the same); every
verification block's signature against a committed key.
"""


def _trial_count(results: dict[str, Any]) -> str:
    """Trials per suite of an entry: "100", or "50", or "30-100" where suites differ."""
    counts = sorted({int(d["trials"]) for d in results["suites"].values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _link(url: str | None) -> str | None:
    """A link that validation accepted, checked again at the point of use (never a ``javascript:`` or odd URL)."""
    return url if url is not None and safe_link(url) else None


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell: control, bidi and line-break characters removed, every ASCII
    punctuation character backslash-escaped (CommonMark: no link, image, emphasis, code, HTML, entity or column
    break can start), so the cell shows exactly the text."""
    breaks = ("Zl", "Zp")  # line and paragraph breaks become spaces, like \r, \n and \t; other unsafe ones go
    text = "".join(" " if c in "\r\n\t" or unicodedata.category(c) in breaks
                   else "" if unicodedata.category(c) in UNSAFE_CATEGORIES else c for c in text)  # fmt: skip
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    # GitHub's Markdown (cmark-gfm) turns `name@host.tld` and `scheme:...` into links even when escaped: an `@` or a
    # `:` that touches the text after it goes in a code span of its own, which splits the text so no autolink forms.
    return re.sub(r"\\([@:])(?=\S)", r"`\1`", escaped)


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The ranked markdown table of the board, followed by the submission guide."""
    head = ("| # | entry | mean AUC | " + " | ".join(DEFAULT_SUITES)
            + " | trials | verified | protocol | model size | link |")  # fmt: skip
    lines = [
        "# icrl-bench leaderboard",
        "",
        "AUC (mean success over a trial) with its 95% bootstrap CI, per suite, over the entry's trials per suite (at",
        "least 30; the suites' first ones; verification re-runs that many). Only verified entries are ranked (by",
        "suites covered, then mean AUC), each with the key that signed it; unverified entries are listed apart.",
        "Privileged entries (shown the map) are a ceiling. `icrl-bench leaderboard render` writes this file and",
        "`index.html` (sortable, with curves; opens offline) from `submissions/`.",
        "",
        head,
        "|" + "---|" * (len(DEFAULT_SUITES) + 8),
    ]
    unverified = [r for r in rows if not r["verified"]]
    for r in rows:
        if r is (unverified[0] if unverified else None):
            lines += ["", "## Unverified entries (not ranked)", "",
                      "Valid results files that no verifier has re-run yet, or whose re-run showed them overstated.",
                      "", head, "|" + "---|" * (len(DEFAULT_SUITES) + 8)]  # fmt: skip
        cells = []
        for s in DEFAULT_SUITES:
            a = r["auc"].get(s)
            cells.append(f"{a['value']:.3f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]" if a else "-")
        rank = "ceiling" if r["privileged"] else "-" if r["rank"] is None else str(r["rank"])
        mark = f"yes ({_md(r['verified_date'])}, key {_md(str(r['key_id']))})" if r["verified"] else "no"
        link = f"[{r['link_label']}]({r['link']})" if r["link"] else ""
        protocol = "forced exploration (paper)" if r["forced_exploration"] == "paper" else "default"
        size = "" if r["model_size"] is None else _md(str(r["model_size"]))
        lines.append(f"| {rank} | {_md(r['name'])} | {r['mean']:.3f} | " + " | ".join(cells)
                     + f" | {r['trials']} | {mark} | {protocol} | {size} | {link} |")  # fmt: skip
    return "\n".join(lines) + "\n" + GUIDE


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>icrl-bench leaderboard</title>
<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
(function () { var original = console.error; console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); }; })();
</script>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #eef; cursor: pointer; user-select: none; }
td.name, th.name { text-align: left; }
.hidden { display: none; }
#curves { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 1em; }
.panel { border: 1px solid #ddd; padding: 4px; }
.panel h3 { font-size: 13px; margin: 2px 4px; }
</style></head>
<body>
<h1>icrl-bench leaderboard</h1>
<p>AUC = mean success over a trial, with 95% bootstrap CI. Click a column header to sort; tick entries to compare
their success-per-episode curves. Privileged entries (shown the map) are a ceiling, not ranked.</p>
<label>Suite: <select id="suite-filter"><option value="all">all suites</option>__OPTIONS__</select></label>
<table id="board"><thead><tr>
<th data-key="rank">#</th><th class="name" data-key="name">entry</th><th data-key="mean">mean AUC</th>__SUITE_HEADERS__
<th data-key="trials">trials</th><th data-key="verified">verified</th><th data-key="protocol">protocol</th><th data-key="model_size">model size</th>
<th>link</th><th>curves</th>
</tr></thead><tbody></tbody></table>
<div id="curves"></div>
<pre id="selftest-result"></pre>
<script id="board-data" type="application/json">__DATA__</script>
<script>
"use strict";
var DATA = JSON.parse(document.getElementById("board-data").textContent);
var SUITES = DATA.suites, ROWS = DATA.rows;
var COLOURS = ["#c0392b", "#2471a3", "#229954", "#7d3c98", "#d68910", "#17a589", "#5d6d7e", "#a04000"];
var state = { key: "rank", descending: false, suite: "all", shown: {} };
ROWS.forEach(function (r, i) { state.shown[r.slug] = i < 4; });

function cellValue(row, key) {
  if (key === "rank") { return row.rank === null ? Infinity : row.rank; }
  if (key === "name" || key === "model_size") { return String(row[key] === null ? "" : row[key]).toLowerCase(); }
  if (key === "verified") { return row.verified ? 1 : 0; }
  if (key === "trials") { return parseInt(row.trials, 10); }
  if (key === "protocol") { return row.forced_exploration; }
  if (key === "mean") { return row.mean; }
  return row.auc[key] ? row.auc[key].value : -1;
}

function sortedRows() {
  var rows = ROWS.slice();
  rows.sort(function (a, b) {
    var x = cellValue(a, state.key), y = cellValue(b, state.key);
    var order = x < y ? -1 : x > y ? 1 : 0;
    return state.descending ? -order : order;
  });
  return rows;
}

function renderTable() {
  var body = document.querySelector("#board tbody");
  body.innerHTML = "";
  sortedRows().forEach(function (r) {
    var tr = document.createElement("tr");
    tr.dataset.slug = r.slug;
    var cells = [r.privileged ? "ceiling" : r.rank === null ? "unverified" : String(r.rank), r.name, r.mean.toFixed(3)];
    SUITES.forEach(function (s) {
      var a = r.auc[s];
      cells.push(a ? a.value.toFixed(3) + " [" + a.ci_low.toFixed(2) + ", " + a.ci_high.toFixed(2) + "]" : "-");
    });
    cells.push(r.trials, r.verified ? "yes (" + r.verified_date + ", key " + r.key_id + ")" : "no",
               r.forced_exploration === "paper" ? "forced exploration (paper)" : "default",
               r.model_size === null ? "" : String(r.model_size));
    cells.forEach(function (text, i) {
      var td = document.createElement("td");
      td.textContent = text;
      if (i === 1) { td.className = "name"; }
      if (i >= 3 && i < 3 + SUITES.length) { td.dataset.suite = SUITES[i - 3]; }
      tr.appendChild(td);
    });
    var link = document.createElement("td");
    if (r.link) { var a = document.createElement("a"); a.href = r.link; a.textContent = r.link_label; link.appendChild(a); }
    tr.appendChild(link);
    var pick = document.createElement("td");
    var box = document.createElement("input");
    box.type = "checkbox"; box.checked = !!state.shown[r.slug];
    box.addEventListener("change", function () { state.shown[r.slug] = box.checked; renderCurves(); });
    pick.appendChild(box); tr.appendChild(pick);
    body.appendChild(tr);
  });
  applyFilter();
}

function applyFilter() {
  document.querySelectorAll("[data-suite]").forEach(function (el) {
    el.classList.toggle("hidden", state.suite !== "all" && el.dataset.suite !== state.suite);
  });
}

function renderCurves() {
  var box = document.getElementById("curves");
  box.innerHTML = "";
  var legend = document.createElement("div");
  legend.id = "legend"; legend.style.width = "100%";
  ROWS.forEach(function (r, i) {
    if (!state.shown[r.slug]) { return; }
    var item = document.createElement("span");
    item.style.marginRight = "1.2em";
    item.innerHTML = '<span style="display:inline-block;width:18px;height:4px;vertical-align:middle;background:' +
      COLOURS[i % COLOURS.length] + '"></span> ';
    item.appendChild(document.createTextNode(r.name));
    legend.appendChild(item);
  });
  box.appendChild(legend);
  var ns = "http://www.w3.org/2000/svg", W = 300, H = 170, M = 28;
  SUITES.forEach(function (s) {
    if (state.suite !== "all" && state.suite !== s) { return; }
    var panel = document.createElement("div");
    panel.className = "panel"; panel.dataset.suite = s;
    var title = document.createElement("h3"); title.textContent = s; panel.appendChild(title);
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    [0, 0.5, 1].forEach(function (v) {
      var y = M / 2 + (H - M) * (1 - v);
      var line = document.createElementNS(ns, "line");
      line.setAttribute("x1", M); line.setAttribute("x2", W - 4); line.setAttribute("y1", y); line.setAttribute("y2", y);
      line.setAttribute("stroke", "#ddd"); svg.appendChild(line);
      var label = document.createElementNS(ns, "text");
      label.setAttribute("x", 2); label.setAttribute("y", y + 4); label.setAttribute("font-size", "10");
      label.textContent = v.toFixed(1); svg.appendChild(label);
    });
    ROWS.forEach(function (r, i) {
      var curve = r.curves[s];
      if (!state.shown[r.slug] || !curve) { return; }
      var points = curve.map(function (v, k) {
        var x = M + (W - M - 6) * (curve.length > 1 ? k / (curve.length - 1) : 0.5);
        return x.toFixed(1) + "," + (M / 2 + (H - M) * (1 - v)).toFixed(1);
      }).join(" ");
      var poly = document.createElementNS(ns, "polyline");
      poly.setAttribute("points", points); poly.setAttribute("fill", "none");
      poly.setAttribute("stroke", COLOURS[i % COLOURS.length]); poly.setAttribute("stroke-width", "2");
      poly.dataset.slug = r.slug;
      var tip = document.createElementNS(ns, "title"); tip.textContent = r.name; poly.appendChild(tip);
      svg.appendChild(poly);
    });
    panel.appendChild(svg);
    box.appendChild(panel);
  });
}

document.querySelectorAll("#board th[data-key]").forEach(function (th) {
  th.addEventListener("click", function () {
    var key = th.dataset.key;
    state.descending = state.key === key ? !state.descending : (key !== "rank" && key !== "name");
    state.key = key;
    renderTable();
  });
});
document.getElementById("suite-filter").addEventListener("change", function (e) {
  state.suite = e.target.value; applyFilter(); renderCurves();
});
renderTable();
renderCurves();

function selfTest() {
  var checks = {};
  function column(i) {
    return Array.prototype.map.call(document.querySelectorAll("#board tbody tr"), function (tr) {
      return tr.children[i].textContent; });
  }
  checks.rows = document.querySelectorAll("#board tbody tr").length === ROWS.length;
  document.querySelector('#board th[data-key="mean"]').click();
  var means = column(2).map(Number);
  checks.sorted_descending = means.every(function (v, i) { return i === 0 || means[i - 1] >= v; });
  document.querySelector('#board th[data-key="mean"]').click();
  means = column(2).map(Number);
  checks.sorted_ascending = means.every(function (v, i) { return i === 0 || means[i - 1] <= v; });
  document.querySelector('#board th[data-key="name"]').click();
  var names = column(1).map(function (n) { return n.toLowerCase(); });
  checks.sorted_by_name = names.every(function (v, i) { return i === 0 || names[i - 1] <= v; });
  var shown = ROWS.filter(function (r) { return state.shown[r.slug]; }).length;
  checks.curves = document.querySelectorAll("#curves polyline").length > 0 &&
    document.querySelectorAll("#curves .panel").length === SUITES.length && shown > 0;
  var select = document.getElementById("suite-filter");
  select.value = SUITES[0]; select.dispatchEvent(new Event("change"));
  checks.filter = document.querySelectorAll("#curves .panel").length === 1 &&
    document.querySelectorAll('#board td[data-suite]:not(.hidden)').length === ROWS.length;
  select.value = "all"; select.dispatchEvent(new Event("change"));
  var ok = Object.keys(checks).every(function (k) { return checks[k]; }) && window.__errors.length === 0;
  document.getElementById("selftest-result").textContent = JSON.stringify({ ok: ok, checks: checks, errors: window.__errors });
}
if (location.hash === "#selftest") { selfTest(); }
</script>
</body></html>
"""


def render_html(rows: list[dict[str, Any]]) -> str:
    """The self-contained page: data inlined as escaped JSON, no external resources."""
    data = {"suites": list(DEFAULT_SUITES), "rows": rows}
    # Inside <script>, the page must never see "<", ">" or "&" from data (a name like "<!--<script>" would
    # switch the HTML tokenizer's state); JSON's \u escapes keep the values.
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in DEFAULT_SUITES)
    headers = "".join(f'<th data-key="{html.escape(s)}" data-suite="{html.escape(s)}">{html.escape(s)}</th>' for s in DEFAULT_SUITES)
    return _PAGE.replace("__OPTIONS__", options).replace("__SUITE_HEADERS__", headers).replace("__DATA__", payload)


def render(board: str | Path = "leaderboard") -> tuple[Path, Path]:
    """Write ``README.md`` and ``index.html`` of the board folder from its submissions."""
    board = Path(board)
    if not (board / "submissions").is_dir():
        raise SubmissionError(f"{board} has no submissions/ folder: is --board right? (`icrl-bench submit` makes it)")
    rows = board_entries(submission_paths(board), board)
    try:
        return (write_board_file(board, board / "README.md", render_markdown(rows)),
                write_board_file(board, board / "index.html", render_html(rows)))  # fmt: skip
    except BoardFileError as e:
        raise SubmissionError(str(e)) from None
