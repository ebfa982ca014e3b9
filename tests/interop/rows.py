"""The rows of the interop matrix: who publishes, who views, what each row asserts.

Run one row (matrix.py does, in a child process per row):
    python rows.py ROW_ID HUDDLE_BASE_URL LOG_DIR
It writes LOG_DIR/result.json and the SDP it exchanged (LOG_DIR/*.sdp)."""

import asyncio
import json
import os
import sys
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from functools import partial

from aiortc import RTCBundlePolicy

import aiortc_client
import gst_client
import impaired

FPS = 15
SIZE_A = (320, 240)
SIZE_B = (192, 144)  # the replacement publisher, told apart by its resolution
FIRST_FRAME_TIMEOUT_S = 10
MEDIA_S = 5  # media watched after the first decoded frame
MIN_VIDEO_FRAMES = FPS * MEDIA_S // 2  # half of what the publisher sends meanwhile
MIN_AUDIO_FRAMES = 50 * MEDIA_S // 2  # Opus: 50 frames/s
VIEWER_FIRST_LEAD_S = 2
LOSSY_SETTLE_S = 2  # after the lossy viewer's first frame, before its window opens
LOSSY_WINDOW_S = 8
LOSSY_MIN_SHARE = 0.95  # of the clean viewer's frames in the same window
LOSSY_MAX_FREEZE_S = 1.0

BALANCED = RTCBundlePolicy.BALANCED
MAX_BUNDLE = RTCBundlePolicy.MAX_BUNDLE


@dataclass
class Report:
    """What one row observed and asserted."""

    checks: list = field(default_factory=list)
    first_frame_ms: float | None = None
    video_frames: int = 0
    audio_frames: int = 0
    resolutions: dict = field(default_factory=dict)

    def check(self, ok, what):
        self.checks.append({"ok": bool(ok), "check": what})
        return ok

    @property
    def passed(self):
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def failures(self):
        return [c["check"] for c in self.checks if not c["ok"]]


# --- clients -------------------------------------------------------------------------------


def aiortc_publisher(codec, bundle=BALANCED, obs_like=False):
    return lambda endpoint: aiortc_client.Publisher(endpoint, codec, *SIZE_A, FPS, bundle, obs_like)


def aiortc_viewer(bundle):
    return lambda endpoint: aiortc_client.Viewer(endpoint, bundle)


def gst_publisher(codec):
    return lambda endpoint: gst_client.Publisher(endpoint, codec, *SIZE_A, FPS)


def gst_viewer(codec, tcp_only=False):
    return lambda endpoint: gst_client.Viewer(endpoint, codec, tcp_only)


# --- shared steps ----------------------------------------------------------------------------


def counters(base):
    """huddle's view of the row, for failure messages."""
    try:
        with urllib.request.urlopen(f"{base}/debug/stats", timeout=3) as response:
            s = json.load(response)
        return (
            f"huddle: {s['participants']} participants, {s['tracks']} tracks, "
            f"{s['subscriptions']} subscriptions, {s['packets_received']} packets received, "
            f"{s['packets_forwarded']} forwarded, {s['keyframe_requests_sent']} keyframe requests"
        )
    except OSError as e:
        return f"huddle stats unavailable: {e}"


async def first_frame(report, base, viewer, publisher, size, since, what):
    """Waits for the viewer's first decoded frame at `size`; returns its delay in ms or None."""
    deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
    while viewer.decoded.first_at(size) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    at = viewer.decoded.first_at(size)
    if at is None:
        report.check(
            False,
            f"{what}: no {size[0]}x{size[1]} frame decoded within {FIRST_FRAME_TIMEOUT_S} s "
            f"(viewer: {viewer.state()}; publisher: {publisher.state()}; "
            f"decoded so far: {viewer.decoded.resolutions() or 'nothing'}, "
            f"{viewer.decoded.audio_frames} audio frames; {counters(base)})",
        )
        return None
    ms = round((at - since) * 1000)
    report.check(True, f"{what}: first {size[0]}x{size[1]} frame decoded after {ms} ms")
    return ms


def check_frames(report, viewer, size, audio_before=0):
    video = viewer.decoded.frames_at(size)
    audio = viewer.decoded.audio_frames - audio_before
    report.check(video >= MIN_VIDEO_FRAMES, f"{video} video frames decoded at {size[0]}x{size[1]} (need ≥ {MIN_VIDEO_FRAMES})")
    report.check(audio >= MIN_AUDIO_FRAMES, f"{audio} audio frames decoded (need ≥ {MIN_AUDIO_FRAMES})")


async def check_delete(report, client, who):
    if client.session_url is None:
        report.check(False, f"{who}: no session to DELETE")
        return
    status = await client.delete()
    report.check(status == 200, f"{who}: DELETE session → {status}")


def save_sdp(log_dir, who, client):
    for kind in ("offer", "answer"):
        text = getattr(client, kind)
        if text:
            with open(os.path.join(log_dir, f"{who}.{kind}.sdp"), "w") as f:
                f.write(text)


def summarize(report, viewer):
    report.video_frames = viewer.decoded.video_frames
    report.audio_frames = viewer.decoded.audio_frames
    report.resolutions = viewer.decoded.resolutions()


# --- scenarios -------------------------------------------------------------------------------


async def publish_then_view(
    report, base, log_dir, room, make_publisher, make_viewer, viewer_first=False, check_viewer=None
):
    """A publisher and a viewer in one room: the viewer decodes MEDIA_S of video and audio.

    First frame: from the later of the two POSTs (when media can start) to the first decoded
    frame. `viewer_first`: the viewer POSTs VIEWER_FIRST_LEAD_S before the publisher.
    `check_viewer(report, base, viewer)`: more checks while both sessions are up."""
    publisher = make_publisher(f"{base}/whip/{room}")
    viewer = make_viewer(f"{base}/whep/{room}")
    try:
        if viewer_first:
            await viewer.start()
            await asyncio.sleep(VIEWER_FIRST_LEAD_S)
            await publisher.start()
        else:
            await publisher.start()
            await viewer.start()
        since = max(publisher.posted_at, viewer.posted_at)
        report.first_frame_ms = await first_frame(report, base, viewer, publisher, publisher.size, since, "viewer")
        if report.first_frame_ms is not None:
            await asyncio.sleep(MEDIA_S)
            check_frames(report, viewer, publisher.size)
        if check_viewer is not None:
            await check_viewer(report, base, viewer)
        await check_delete(report, viewer, "viewer")
        await check_delete(report, publisher, "publisher")
    finally:
        summarize(report, viewer)
        save_sdp(log_dir, "publisher", publisher)
        save_sdp(log_dir, "viewer", viewer)
        await viewer.close()
        await publisher.close()


def diagnosis(base, session_url):
    with urllib.request.urlopen(f"{base}/sessions/{session_url.rsplit('/', 1)[-1]}/diagnosis", timeout=3) as r:
        return json.load(r)


async def tcp_pair(report, base, viewer):
    """huddle's diagnosis of the viewer's session must show a TCP pair (ICE-TCP rows)."""
    if viewer.session_url is None:
        report.check(False, "viewer: no session to diagnose")
        return
    d = await asyncio.to_thread(diagnosis, base, viewer.session_url)
    pair = d.get("pair") or {}
    report.check(
        pair.get("protocol") == "tcp",
        f"huddle's selected pair for the viewer: {pair.get('protocol')} {pair.get('local')} ⇄ {pair.get('remote')} "
        f"(connected after {d.get('connect_ms')} ms)",
    )


async def publisher_replaced(report, base, log_dir, room, codec, bundle):
    """Publisher A (SIZE_A) → viewer; A DELETEs; B (SIZE_B) publishes to the same room; the same
    viewer session, never renegotiated, decodes B. First frame: B's POST → first SIZE_B frame."""
    make = partial(aiortc_client.Publisher, f"{base}/whip/{room}", codec, fps=FPS, bundle_policy=BALANCED)
    a = make(*SIZE_A)
    b = make(*SIZE_B)
    viewer = aiortc_client.Viewer(f"{base}/whep/{room}", bundle)
    try:
        await a.start()
        await viewer.start()
        if await first_frame(report, base, viewer, a, SIZE_A, viewer.posted_at, "viewer, publisher A") is None:
            return
        await asyncio.sleep(MEDIA_S / 2)
        await check_delete(report, a, "publisher A")
        await a.close()
        audio_before = viewer.decoded.audio_frames
        await b.start()
        report.first_frame_ms = await first_frame(report, base, viewer, b, SIZE_B, b.posted_at, "viewer, publisher B")
        if report.first_frame_ms is not None:
            await asyncio.sleep(MEDIA_S)
            check_frames(report, viewer, SIZE_B, audio_before)
        await check_delete(report, viewer, "viewer")
        await check_delete(report, b, "publisher B")
    finally:
        summarize(report, viewer)
        save_sdp(log_dir, "publisher-a", a)
        save_sdp(log_dir, "publisher-b", b)
        save_sdp(log_dir, "viewer", viewer)
        await viewer.close()
        await a.close()
        await b.close()


async def view_through_loss(report, base, log_dir, room, loss, seed=7):
    """An aiortc publisher, a clean aiortc viewer and one whose downlink goes through
    impair-relay losing `loss` of the packets at random: over LOSSY_WINDOW_S the lossy viewer
    decodes at least LOSSY_MIN_SHARE of the clean one's frames and never waits more than
    LOSSY_MAX_FREEZE_S for one (huddle resends what it NACKs, and replaces a keyframe lost
    beyond repair)."""
    relays = []

    async def through(answer):
        server = impaired.server_address(answer)
        if server is None:
            raise RuntimeError("no UDP candidate in huddle's answer")
        relay = await impaired.Relay.start(server, seed=seed)
        relays.append(relay)
        return impaired.via_relay(answer, relay.client_side)

    publisher = aiortc_publisher("VP8")(f"{base}/whip/{room}")
    clean = aiortc_client.Viewer(f"{base}/whep/{room}", BALANCED)
    lossy = aiortc_client.Viewer(f"{base}/whep/{room}", BALANCED, through=through)
    try:
        await publisher.start()
        await clean.start()
        await lossy.start()
        report.first_frame_ms = await first_frame(
            report, base, lossy, publisher, publisher.size, lossy.posted_at, "lossy viewer"
        )
        if report.first_frame_ms is None:
            return
        # The link turns lossy once the viewer decodes: aiortc never asks for packets before
        # the first it received, nor for a keyframe when its first one cannot be decoded, so
        # loss from the very first packet can leave it without video until the publisher's
        # next keyframe.
        await relays[0].ask(f"set down loss={loss}")
        await asyncio.sleep(LOSSY_SETTLE_S)
        start = time.monotonic()
        audio_before = lossy.decoded.audio_frames
        before = (await relays[0].stats())["down"]
        await asyncio.sleep(LOSSY_WINDOW_S)
        end = time.monotonic()
        after = (await relays[0].stats())["down"]
        clean_frames, _ = clean.decoded.window(start, end)
        frames, freeze = lossy.decoded.window(start, end)
        audio = lossy.decoded.audio_frames - audio_before
        received = after["received"] - before["received"]
        lost = (after["lost"] - before["lost"]) / max(1, received)
        report.check(lost >= loss * 0.5, f"the relay lost {lost:.1%} of the {received} packets towards the viewer in the window")
        report.check(
            frames >= clean_frames * LOSSY_MIN_SHARE,
            f"{frames} video frames decoded in {LOSSY_WINDOW_S} s against {clean_frames} by the loss-free viewer "
            f"({frames / max(1, clean_frames):.1%}, need ≥ {LOSSY_MIN_SHARE:.0%})",
        )
        report.check(
            freeze <= LOSSY_MAX_FREEZE_S,
            f"longest time without a decoded frame {freeze * 1000:.0f} ms (need ≤ {LOSSY_MAX_FREEZE_S * 1000:.0f} ms)",
        )
        # Audio is not resent: what is lost stays lost (Opus RED, where negotiated, carries it).
        report.check(audio > 0, f"{audio} audio frames decoded in the window")
        await check_delete(report, lossy, "lossy viewer")
    finally:
        summarize(report, lossy)
        save_sdp(log_dir, "publisher", publisher)
        save_sdp(log_dir, "viewer", lossy)
        await lossy.close()
        await clean.close()
        await publisher.close()
        for relay in relays:
            await relay.stop()


# --- the matrix ------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    stack: str
    version: str
    role: str  # the role of the client under test
    codec: str
    bundle_policy: str  # of the client under test
    scenario: str
    run: object  # async (report, base, log_dir, room) -> None


AIORTC = ("aiortc", aiortc_client.VERSION)
GST = ("GStreamer webrtcbin", gst_client.VERSION)


def _aiortc_pair(codec, bundle):
    return Row(
        f"aiortc-{codec.lower()}-{bundle.value}",
        *AIORTC,
        "WHEP viewer",
        f"{codec}+Opus",
        bundle.value,
        f"aiortc publisher ({codec}+Opus, balanced) → aiortc viewer ({bundle.value})",
        partial(publish_then_view, make_publisher=aiortc_publisher(codec), make_viewer=aiortc_viewer(bundle)),
    )


ROWS = [
    _aiortc_pair("VP8", BALANCED),
    _aiortc_pair("VP8", MAX_BUNDLE),
    _aiortc_pair("H264", BALANCED),
    _aiortc_pair("H264", MAX_BUNDLE),
    Row(
        "aiortc-obs-like-publisher",
        *AIORTC,
        "WHIP publisher (OBS-like)",
        "H264+Opus",
        "max-bundle",
        "OBS-shaped aiortc publisher (audio first, max-bundle, no a=candidate, no trickle) → aiortc viewer (balanced)",
        partial(
            publish_then_view,
            make_publisher=aiortc_publisher("H264", bundle=MAX_BUNDLE, obs_like=True),
            make_viewer=aiortc_viewer(BALANCED),
        ),
    ),
    Row(
        "aiortc-viewer-first",
        *AIORTC,
        "WHEP viewer (joins first)",
        "VP8+Opus",
        "balanced",
        f"aiortc viewer POSTs, aiortc publisher {VIEWER_FIRST_LEAD_S} s later",
        partial(
            publish_then_view,
            make_publisher=aiortc_publisher("VP8"),
            make_viewer=aiortc_viewer(BALANCED),
            viewer_first=True,
        ),
    ),
    Row(
        "aiortc-publisher-replaced",
        *AIORTC,
        "WHEP viewer (publisher replaced)",
        "VP8+Opus",
        "balanced",
        f"publisher A {SIZE_A[0]}x{SIZE_A[1]} DELETEs, B {SIZE_B[0]}x{SIZE_B[1]} publishes; same viewer session decodes B",
        partial(publisher_replaced, codec="VP8", bundle=BALANCED),
    ),
    *(
        Row(
            f"gst-publisher-{codec.lower()}",
            *GST,
            "WHIP publisher",
            f"{codec}+Opus",
            "max-bundle",
            f"webrtcbin ({encoder} + opusenc, default RSA DTLS certificate) → aiortc viewer (balanced)",
            partial(publish_then_view, make_publisher=gst_publisher(codec), make_viewer=aiortc_viewer(BALANCED)),
        )
        for codec, encoder in (("H264", "x264enc"), ("VP8", "vp8enc"))
    ),
    *(
        Row(
            f"gst-viewer-{codec.lower()}",
            *GST,
            "WHEP viewer",
            f"{codec}+Opus",
            "max-bundle",
            f"aiortc publisher ({codec}+Opus) → webrtcbin viewer (decodebin, default RSA DTLS certificate)",
            partial(publish_then_view, make_publisher=aiortc_publisher(codec), make_viewer=gst_viewer(codec)),
        )
        for codec in ("VP8", "H264")
    ),
    Row(
        "aiortc-viewer-loss-5",
        *AIORTC,
        "WHEP viewer behind 5% random loss",
        "VP8+Opus",
        "balanced",
        "aiortc publisher → two aiortc viewers, one through impair-relay, which loses 5% of the packets "
        f"towards it once it decodes: ≥ {LOSSY_MIN_SHARE:.0%} of the loss-free viewer's frames over "
        f"{LOSSY_WINDOW_S} s, no wait over {LOSSY_MAX_FREEZE_S:.0f} s for a frame",
        partial(view_through_loss, loss=0.05),
    ),
    Row(
        "gst-viewer-vp8-ice-tcp",
        *GST,
        "WHEP viewer over ICE-TCP only",
        "VP8+Opus",
        "max-bundle",
        "aiortc publisher (VP8+Opus, UDP) → webrtcbin viewer whose libnice gathers TCP only and "
        "which drops huddle's UDP candidates from the answer: media over huddle's passive TCP "
        "candidate (RFC 6544/4571); huddle's diagnosis shows a TCP pair",
        partial(
            publish_then_view,
            make_publisher=aiortc_publisher("VP8"),
            make_viewer=gst_viewer("VP8", tcp_only=True),
            check_viewer=tcp_pair,
        ),
    ),
]


def describe(row):
    """The row's fields in results.json, before its outcome."""
    return {
        "row": row.id,
        "stack": row.stack,
        "stack_version": row.version,
        "role": row.role,
        "codec": row.codec,
        "bundle_policy": row.bundle_policy,
        "scenario": row.scenario,
    }


async def run_row(row, base, log_dir):
    report = Report()
    try:
        await row.run(report, base, log_dir, room=row.id)
    except Exception as e:  # a client that raises fails its row, with the reason
        report.check(False, f"{type(e).__name__}: {e}")
        traceback.print_exc()
    return {
        **describe(row),
        "result": "pass" if report.passed else "fail",
        "first_frame_ms": report.first_frame_ms,
        "video_frames_decoded": report.video_frames,
        "audio_frames_decoded": report.audio_frames,
        "resolutions": report.resolutions,
        "checks": report.checks,
        "failures": report.failures(),
    }


def main(row_id, base, log_dir):
    aiortc_client.restrict_to_loopback()
    row = next(r for r in ROWS if r.id == row_id)
    result = asyncio.run(run_row(row, base, log_dir))
    with open(os.path.join(log_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
