"""Renders the interop matrix as the Markdown table in README.md, between
<!-- interop-matrix:start --> and <!-- interop-matrix:end -->: the rows of
target/interop/results.json (a whole run of tests/interop/run: aiortc, GStreamer) and of
target/interop/rows/*.json (one file a row, written by the browser tests and by the str0m
client's media test), grouped by stack.

    python3 tests/interop/render.py"""

import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(ROOT, "target", "interop", "results.json")
ROWS = os.path.join(ROOT, "target", "interop", "rows")
README = os.path.join(ROOT, "README.md")
START = "<!-- interop-matrix:start -->"
END = "<!-- interop-matrix:end -->"
MATRIX = "tests/interop/run"
# Every suite that writes rows: a table without one of them does not cover the matrix.
SUITES = [MATRIX, "npm test --prefix tests/browser", "cargo test -p huddle-tests --test media"]


def load():
    """All rows, each with the suite that produced it; exits if the matrix run was filtered
    or a suite produced no rows."""
    with open(RESULTS) as f:
        results = json.load(f)
    if not results["complete"]:
        sys.exit(
            f"render: {RESULTS} holds a filtered run (rows matching {results['row_filter']!r}); "
            "run the whole matrix before rendering README.md"
        )
    rows = [{**r, "suite": MATRIX} for r in results["rows"]]
    for path in sorted(glob.glob(os.path.join(ROWS, "*.json"))):
        with open(path) as f:
            rows.append(json.load(f))
    missing = [s for s in SUITES if not any(r["suite"] == s for r in rows)]
    if missing:
        sys.exit(
            f"render: no rows from {', '.join(missing)} (in {ROWS}); "
            "run every suite before rendering README.md"
        )
    stacks = list(dict.fromkeys(r["stack"] for r in rows))
    return sorted(rows, key=lambda r: stacks.index(r["stack"]))


def cell(value):
    return "—" if value is None else value


def table(rows):
    lines = [
        "| row | stack | version | role | codec | bundle | result | first frame | frames (video / audio) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        first = f"{r['first_frame_ms']} ms" if r["first_frame_ms"] is not None else "—"
        result = "pass" if r["result"] == "pass" else "**fail**"
        media = f"{r['video_frames_decoded']} / {r['audio_frames_decoded']}"
        if r.get("unit"):
            media += f" ({r['unit']})"
        lines.append(
            f"| `{r['row']}` | {r['stack']} | {cell(r['stack_version'])} | {r['role']} | {cell(r['codec'])} "
            f"| {cell(r['bundle_policy'])} | {result} | {first} | {media} |"
        )
    passed = sum(r["result"] == "pass" for r in rows)
    produced = ", ".join(f"{sum(r['suite'] == s for r in rows)} by `{s}`" for s in SUITES)
    lines.append("")
    lines.append(f"{passed} of {len(rows)} rows pass (generated: {produced}).")
    return "\n".join(lines)


def main():
    rows = load()
    with open(README) as f:
        readme = f.read()
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        sys.exit(f"render: README.md lacks the markers {START} … {END}")
    rendered = readme[: start + len(START)] + "\n" + table(rows) + "\n" + readme[end:]
    with open(README, "w") as f:
        f.write(rendered)
    print(f"render: README.md interop table updated ({len(rows)} rows)")


if __name__ == "__main__":
    main()
