"""Runs the interop matrix: each row against a fresh huddle, in a child process with a hard
time limit, one row after another. Writes target/interop/results.json and, per row,
target/interop/logs/ROW/ (huddle.log, client.log, the SDP exchanged, result.json).

    HUDDLE_BIN=target/debug/huddle python matrix.py [ROW_FILTER]

Exits non-zero when a row fails, naming it, why, and the tail of huddle's log."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from rows import ROWS, describe
from server import Huddle

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "target", "interop")
# A row needs 6–20 s (publisher-replaced waits for two first frames of FIRST_FRAME_TIMEOUT_S
# each at worst); the whole matrix stays within MATRIX_BUDGET_S even if rows hang.
ROW_TIMEOUT_S = 40
MATRIX_BUDGET_S = 260
LOG_TAIL_LINES = 30


def tail(path, lines):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def crashed(row, why, client_log=None):
    """The result of a row that produced none of its own."""
    detail = f"; client log tail:\n{tail(client_log, 15)}" if client_log else ""
    return {
        **describe(row),
        "result": "fail",
        "first_frame_ms": None,
        "video_frames_decoded": 0,
        "audio_frames_decoded": 0,
        "resolutions": {},
        "checks": [{"ok": False, "check": why}],
        "failures": [why + detail],
    }


def run_row(row, binary, timeout_s):
    log_dir = os.path.join(OUT, "logs", row.id)
    os.makedirs(log_dir, exist_ok=True)
    for stale in os.listdir(log_dir):
        os.remove(os.path.join(log_dir, stale))
    client_log = os.path.join(log_dir, "client.log")
    started = time.monotonic()
    try:
        huddle = Huddle(binary, os.path.join(log_dir, "huddle.log")).start()
    except RuntimeError as e:
        result = crashed(row, str(e))
        result["duration_s"] = round(time.monotonic() - started, 1)
        result["logs"] = os.path.relpath(log_dir, ROOT)
        return result, ""
    try:
        with open(client_log, "w") as log:
            child = subprocess.run(
                [sys.executable, os.path.join(HERE, "rows.py"), row.id, huddle.base, log_dir],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
        result_path = os.path.join(log_dir, "result.json")
        if child.returncode == 0 and os.path.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        else:
            result = crashed(row, f"row process exited with {child.returncode}", client_log)
    except subprocess.TimeoutExpired:
        result = crashed(row, f"row did not finish within {timeout_s:.0f} s", client_log)
    finally:
        huddle_tail = huddle.log_tail(LOG_TAIL_LINES)
        huddle.stop()
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["logs"] = os.path.relpath(log_dir, ROOT)
    return result, huddle_tail


def main(argv):
    binary = os.path.abspath(os.environ.get("HUDDLE_BIN") or os.path.join(ROOT, "target", "debug", "huddle"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"interop: no huddle binary at {binary} (cargo build --bin huddle, or set HUDDLE_BIN)")
    row_filter = argv[0] if argv else ""
    rows = [r for r in ROWS if row_filter in r.id]
    if not rows:
        sys.exit(f"interop: no row matches {row_filter!r}; rows: {', '.join(r.id for r in ROWS)}")
    os.makedirs(OUT, exist_ok=True)
    results_path = os.path.join(OUT, "results.json")
    if os.path.exists(results_path):
        os.remove(results_path)  # never leave an earlier run's results for render.py

    started = time.monotonic()
    results, failed = [], []
    for row in rows:
        left_s = MATRIX_BUDGET_S - (time.monotonic() - started)
        if left_s < 5:
            result = crashed(row, f"not run: the matrix used its {MATRIX_BUDGET_S} s budget")
            result["duration_s"] = 0
            result["logs"] = None
            results.append(result)
            failed.append((result, ""))
            print(f"FAIL  {row.id:30} not run (matrix budget used)", flush=True)
            continue
        result, huddle_tail = run_row(row, binary, min(ROW_TIMEOUT_S, left_s))
        results.append(result)
        first = f"{result['first_frame_ms']} ms" if result["first_frame_ms"] is not None else "-"
        print(
            f"{result['result'].upper():4}  {row.id:30} first frame {first:>8}, "
            f"{result['video_frames_decoded']} video / {result['audio_frames_decoded']} audio frames decoded "
            f"({result['duration_s']} s)",
            flush=True,
        )
        if result["result"] != "pass":
            failed.append((result, huddle_tail))

    total_s = round(time.monotonic() - started, 1)
    with open(results_path, "w") as f:
        json.dump(
            {
                "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "huddle": binary,
                "row_filter": row_filter,
                "complete": len(rows) == len(ROWS),
                "duration_s": total_s,
                "rows": results,
            },
            f,
            indent=2,
            ensure_ascii=False,
        )

    for result, huddle_tail in failed:
        print(f"\n--- interop row FAILED: {result['row']} ({result['scenario']})")
        for why in result["failures"]:
            print(f"    {why}")
        if result["logs"]:
            print(f"    logs: {result['logs']}/")
        if huddle_tail:
            print("    huddle log tail:")
            print("\n".join(f"      {line}" for line in huddle_tail.splitlines()))
    print(f"\ninterop matrix: {len(results)} rows in {total_s} s -> {os.path.relpath(OUT, ROOT)}/results.json")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
