"""Renders the tables of docs/benchmarks.md from the harness's JSON in docs/bench/ (written by
docs/bench/run). Each table sits between <!-- bench:NAME --> and <!-- /bench:NAME -->; the
prose around them is kept. A benchmark whose JSON is missing renders as "not run".

    python3 docs/bench/render.py           rewrite docs/benchmarks.md
    python3 docs/bench/render.py --check   exit 1 if it is not what the JSON renders to"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(os.path.dirname(HERE), "benchmarks.md")


def load(name):
    path = os.path.join(HERE, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def num(v, fmt="{:.1f}", none="n/a"):
    return none if v is None else fmt.format(v)


def kib(b):
    return num(None if b is None else b / 1024, "{:.0f} KiB")


def ms(p):
    return f"{p['p50']:.0f} / {p['p95']:.0f} ms"


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|---|" + "|".join("--:" for _ in head[1:]) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def us_per_pkt(run):
    return run["window"].get("server_cpu_us_per_forwarded_packet")


def residence(server):
    if not server:
        return "n/a"
    r = server["residence_us"]
    return f"{r['p50']} / {r['p99']} / {r['p999']} µs"


def shares(server):
    if not server:
        return "n/a"
    return " / ".join(f"{s:.0f}%" for s in server["worker_share_pct"])


def floor_ns():
    f = load("floor")
    return f["floor"]["floor_ns_per_packet"] if f else None


def times_floor(us):
    ns = floor_ns()
    return None if us is None or not ns else us * 1000 / ns


def harness_share(run):
    w = run["window"]
    h, s = w.get("harness_cpu_us_per_received_packet"), w.get("server_cpu_us_per_forwarded_packet")
    return None if h is None or not s else h / s * 100


def ratio(cmp, num_sut, den_sut):
    """Mean server CPU per forwarded packet of `num_sut` over that of `den_sut`."""
    means = {s["sut"]: s["mean_server_cpu_us_per_forwarded_packet"] for s in cmp["summary"]}
    n, d = means.get(num_sut), means.get(den_sut)
    return None if not d or n is None else n / d


def janus_ratio(cmp):
    return ratio(cmp, "janus", "huddle")


def knee_steps():
    """The ramp's steps, the last one within its limits (the knee), and the step closest to
    half of it."""
    r = load("ramp")
    if not r or not r["steps"]:
        return None, None, None
    ok = [s for s in r["steps"] if not s.get("stop")] or r["steps"][:1]
    knee = ok[-1]
    half = min(r["steps"], key=lambda s: abs(s["subscribers"] - knee["subscribers"] / 2))
    return r, knee, half


def summary():
    rows = []
    for n in (10, 100):
        c = load(f"janus-{n}")
        ratio = janus_ratio(c) if c else None
        rows.append([f"Janus ÷ huddle CPU per forwarded packet, {n} viewers", "≥ 5×",
                     num(ratio, "{:.2f}×", "not run")])
    r, knee, half = knee_steps()
    if knee:
        rows.append([f"× floor near the knee ({knee['subscribers']} subscribers)", "≤ 1.5×",
                     num(times_floor(us_per_pkt(knee)), "{:.2f}×")])
    b50 = load("broadcast-50")
    rows.append(["× floor at 50 viewers", "≤ 2×",
                 num(times_floor(us_per_pkt(b50)) if b50 else None, "{:.2f}×", "not run")])
    w1, w2 = load("workers-1"), load("workers-2")
    if w1 and w2 and us_per_pkt(w1) and us_per_pkt(w2):
        rows.append(["two workers ÷ one, CPU per forwarded packet (fan-out per worker)",
                     "≤ 1.1×, each ≥ 40%",
                     f"{us_per_pkt(w2) / us_per_pkt(w1):.2f}× ({shares(w2.get('server'))})"])
    if half:
        rows.append([f"residence p50 / p99 / p99.9 at half the knee ({half['subscribers']})",
                     "p99 < 1 ms, p99.9 < 5 ms", residence(half.get("server"))])
    lean, full = load("lean-200"), load("floor")
    full = full.get("broadcast") if full else None
    rows.append(["server RSS per viewer: full (NACK/RTX) / lean", "≤ 256 KiB",
                 f"{kib(full['memory']['server_rss_per_participant_bytes']) if full else 'n/a'}"
                 f" / {kib(lean['memory']['server_rss_per_participant_bytes']) if lean else 'n/a'}"])
    j = load("joins-300")
    if j and j["joins"].get("storm"):
        s = j["joins"]["storm"]
        rows.append(["WHEP joins/s (one worker), join p95 (POST → first media)",
                     "≥ 300/s, p95 < 300 ms",
                     f"{s['achieved_per_s']:.0f}/s, {j['joins']['join_ms']['p95']:.0f} ms"])
    if lean:
        rows.append(["harness ÷ server CPU per packet (lean viewers)", "≤ 25%",
                     num(harness_share(lean), "{:.0f}%")])
    return table(["target", "goal", "this run"], rows)


def broadcast_row(label, run):
    w, m = run["window"], run["memory"]
    lat = w["latency_us"]
    return [label, w["viewers"], f"{w['down_tracks_receiving']}/{w['down_tracks_expected']}",
            f"{w['forwarded_packets_per_s']:,.0f}", f"{w['loss_pct']:.3f}%",
            f"{lat['p50'] / 1000:.1f} / {lat['p99'] / 1000:.1f} ms", residence(run.get("server")),
            num(w.get("server_cpu_pct"), "{:.1f}%"), f"**{num(us_per_pkt(run), '{:.2f}')}**",
            num(times_floor(us_per_pkt(run)), "{:.2f}×"),
            num(w.get("harness_cpu_us_per_received_packet"), "{:.2f}"),
            num(w.get("others_cpu_pct"), "{:.0f}%"), ms(run["joins"]["join_ms"]),
            kib(m["server_rss_per_participant_bytes"])]


def broadcasts():
    runs = [("floor", "200 full viewers (floor run)"), ("broadcast-50", "50 full viewers"),
            ("lean-200", "200 lean viewers"), ("joins-300", "300 lean, join storm"),
            ("workers-1", "200 lean, 1 worker, unpinned"),
            ("workers-2", "200 lean, 2 workers, unpinned")]
    rows = []
    for name, label in runs:
        run = load(name)
        run = run.get("broadcast") if run and name == "floor" else run
        if run:
            rows.append(broadcast_row(label, run))
    head = ["run", "viewers", "down-tracks", "fwd pkt/s", "loss", "latency p50 / p99",
            "residence p50 / p99 / p99.9", "server CPU", "µs / fwd pkt", "× floor",
            "harness µs / recv pkt", "others", "join p50 / p95", "RSS / participant"]
    out = table(head, rows)
    ns = floor_ns()
    if ns:
        out += f"\n\nFloor (AES-128-GCM seal + `sendmmsg`, this process): **{ns:,.0f} ns** per packet."
    return out


def side_by_side(prefix, label, of):
    """The runs of `{prefix}-10` and `{prefix}-100` in turn, each size closed by `of(cmp)`."""
    rows = []
    for n in (10, 100):
        c = load(f"{prefix}-{n}")
        if not c:
            continue
        for i, run in enumerate(c["runs"]):
            w = run["window"]
            rows.append([n, run["sut"], i + 1, f"{w['down_tracks_receiving']}/{w['down_tracks_expected']}",
                         f"{w['forwarded_packets_per_s']:,.0f}", f"{w['loss_pct']:.3f}%",
                         num(w.get("server_cpu_pct"), "{:.1f}%"),
                         f"**{num(us_per_pkt(run), '{:.2f}')}**",
                         num(w.get("others_cpu_pct"), "{:.0f}%")])
        rows.append([n, f"**{label}**", "", "", "", "", "",
                     f"**{num(of(c), '{:.2f}×')}**", ""])
    if not rows:
        return None
    return table(["viewers", "SUT", "run", "down-tracks", "fwd pkt/s", "loss", "server CPU",
                  "µs / fwd pkt", "others"], rows)


def janus():
    return side_by_side("janus", "Janus ÷ huddle", janus_ratio) or "Not run (Janus not installed)."


def bwe():
    return side_by_side("bwe", "without ÷ with", lambda c: ratio(c, "huddle-no-bwe", "huddle")) \
        or "Not run."


def ramp():
    r, knee, _ = knee_steps()
    if not r:
        return "Not run."
    rows = []
    for s in r["steps"]:
        w = s["window"]
        lat = w["latency_us"]
        rows.append([s["subscribers"], f"{w['down_tracks_receiving']}/{w['down_tracks_expected']}",
                     f"{w['forwarded_packets_per_s']:,.0f}", f"{w['loss_pct']:.3f}%",
                     num(w.get("server_cpu_pct"), "{:.1f}%"), num(us_per_pkt(s), "{:.2f}"),
                     num(times_floor(us_per_pkt(s)), "{:.2f}×"),
                     f"{lat['p50'] / 1000:.1f} / {lat['p99'] / 1000:.1f} ms",
                     residence(s.get("server")), num(w.get("harness_cpu_pct"), "{:.1f}%"),
                     s.get("stop") or ""])
    out = table(["subscribers", "down-tracks", "fwd pkt/s", "loss", "server CPU", "µs / pkt",
                 "× floor", "latency p50 / p99", "residence p50 / p99 / p99.9", "harness CPU",
                 "stopped because"], rows)
    return out + (f"\n\nKnee: **{r['knee_subscribers']} subscribers**; stopped: {r['stop_reason']}."
                  if r.get("knee_subscribers") else f"\n\nStopped: {r['stop_reason']}.")


def meeting():
    m = load("meeting-4x5")
    if not m:
        return "Not run."
    w = m["window"]
    lat = w["latency_us"]
    return table(["rooms × participants", "down-tracks", "fwd pkt/s", "loss", "latency p50 / p99",
                  "server CPU", "µs / fwd pkt", "join p50 / p95", "server offers", "RSS / participant"],
                 [[f"{m['rooms']} × {m['participants_per_room']}",
                   f"{w['down_tracks_receiving']}/{w['down_tracks_expected']}",
                   f"{w['forwarded_packets_per_s']:,.0f}", f"{w['loss_pct']:.3f}%",
                   f"{lat['p50'] / 1000:.1f} / {lat['p99'] / 1000:.1f} ms",
                   num(w.get("server_cpu_pct"), "{:.1f}%"), f"**{num(us_per_pkt(m), '{:.2f}')}**",
                   ms(m["joins"]["join_ms"]), m["server_offers"],
                   kib(m["memory"]["server_rss_per_participant_bytes"])]])


def cascade():
    c = load("cascade-20")
    if not c:
        return "Not run."
    nodes = ", ".join(f"{n['node']} {num(n.get('cpu_pct'), '{:.1f}%')} ({n['pulled_packets']:,} pulled)"
                      for n in c["nodes"])
    return table(["viewers", "three nodes: µs / fwd pkt", "one node: µs / fwd pkt",
                  "relay overhead µs / fwd pkt", "per-node CPU"],
                 [[c["viewers"], num(c.get("cluster_cpu_us_per_forwarded_packet"), "{:.2f}"),
                   num(c["single"].get("server_cpu_us_per_forwarded_packet"), "{:.2f}"),
                   f"**{num(c.get('relay_overhead_us_per_forwarded_packet'), '{:.2f}')}**", nodes]])


SECTIONS = {"summary": summary, "broadcast": broadcasts, "janus": janus, "bwe": bwe, "ramp": ramp,
            "meeting": meeting, "cascade": cascade}


def render(text):
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            sys.exit(f"render: {DOC} has no <!-- bench:{name} --> … <!-- /bench:{name} --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main():
    with open(DOC) as f:
        old = f.read()
    new = render(old)
    if "--check" in sys.argv[1:]:
        if new != old:
            sys.exit("render: docs/benchmarks.md is not what docs/bench/*.json renders to; "
                     "run python3 docs/bench/render.py")
        return
    with open(DOC, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
