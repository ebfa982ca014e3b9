"""GStreamer webrtcbin (Debian's 1.22) as a WHIP publisher and as a WHEP viewer.

1.22 has no whipsink/whepsrc, so this drives webrtcbin itself: create the offer, wait for ICE
gathering to complete (the offer then carries the candidates; nothing is trickled), POST it,
set the answer. webrtcbin keeps its own default DTLS certificate (RSA-2048). No GLib main loop
is needed: webrtcbin and libnice run their own threads, and every wait here has a timeout."""

import asyncio
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

from decoded import Decoded  # noqa: E402
from whip import delete_session, post_offer  # noqa: E402

Gst.init(None)
VERSION = "{}.{}.{}".format(*Gst.version()[:3])
STEP_TIMEOUT_S = 5

VIDEO_ENCODERS = {
    "H264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=600"
    " ! video/x-h264,profile=constrained-baseline"
    " ! rtph264pay config-interval=-1 aggregate-mode=zero-latency"
    " ! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000",
    "VP8": "vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 target-bitrate=600000"
    " ! rtpvp8pay picture-id-mode=15-bit"
    " ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
}
# encoding-params=2: RFC 7587 writes Opus as opus/48000/2; huddle rejects an m-line without "/2".
OPUS_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"
# What the viewer offers: one format per codec. H264 42e01f is Constrained Baseline, the profile
# every WebRTC endpoint must support (RFC 7742).
VIEWER_CAPS = {
    "VP8": "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
    "H264": "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f",
}


def only_tcp_candidates(sdp):
    """`sdp` without its UDP candidates: a client whose network blocks UDP sees only the
    server's passive TCP candidate (ICE-TCP, RFC 6544) to try."""
    lines = sdp.split("\r\n")
    return "\r\n".join(
        line for line in lines if not (line.startswith("a=candidate:") and line.split()[2].lower() != "tcp")
    )


class _WebRtcPeer:
    """A pipeline around one webrtcbin (named `webrtc`), signaled over WHIP/WHEP; the same
    async interface as aiortc_client's Publisher and Viewer (blocking steps in worker threads).

    `tcp_only`: libnice gathers TCP candidates only (active and passive, no UDP) and the
    server's UDP candidates are removed from its answer, so ICE can only succeed over TCP."""

    def __init__(self, pipeline, endpoint, tcp_only=False):
        self.endpoint = endpoint
        self.pipeline = pipeline
        self.webrtc = pipeline.get_by_name("webrtc")
        self.tcp_only = tcp_only
        # webrtcbin 1.22 never sinks its ICE agent's floating reference: the Python wrapper
        # takes it, so it must live as long as webrtcbin (dropping it frees the agent).
        self._ice = self.webrtc.get_property("ice-agent")
        self._ice.emit("add-local-ip-address", "127.0.0.1")
        self._ice.set_property("ice-tcp", tcp_only)
        self._ice.set_property("ice-udp", not tcp_only)
        self.errors = []
        self.pipeline.get_bus().set_sync_handler(self._on_message)
        self.session_url = None
        self.offer = self.answer = None
        self.posted_at = None

    def _on_message(self, _bus, message):
        if message.type in (Gst.MessageType.ERROR, Gst.MessageType.WARNING):
            error, debug = (
                message.parse_error() if message.type == Gst.MessageType.ERROR else message.parse_warning()
            )
            self.errors.append(f"{message.src.get_name()}: {error.message} ({debug})")
        return Gst.BusSyncReply.DROP

    def _promise(self, signal, *args):
        """Emits a webrtcbin action signal that replies through a promise; returns the promise.

        PyGObject borrows a reply's values from the reply structure, and the structure from the
        promise: keep both referenced while a value is in use, or it dangles."""
        done = threading.Event()
        promise = Gst.Promise.new_with_change_func(lambda _p: done.set())
        self.webrtc.emit(signal, *args, promise)
        if not done.wait(STEP_TIMEOUT_S):
            raise TimeoutError(f"webrtcbin {signal}: no reply in {STEP_TIMEOUT_S} s")
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            raise RuntimeError(f"webrtcbin {signal}: {reply.get_value('error').message}")
        return promise

    def _wait_for_gathering(self):
        complete = threading.Event()

        def check(*_):
            if self.webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
                complete.set()

        handler = self.webrtc.connect("notify::ice-gathering-state", check)
        check()
        gathered = complete.wait(STEP_TIMEOUT_S)
        self.webrtc.disconnect(handler)
        if not gathered:
            raise TimeoutError(f"webrtcbin ICE gathering did not complete in {STEP_TIMEOUT_S} s")

    def _negotiate(self):
        """Offer, gather, POST, answer. Blocking: runs in a worker thread."""
        created = self._promise("create-offer", None)
        reply = created.get_reply()
        self._promise("set-local-description", reply.get_value("offer"))
        self._wait_for_gathering()
        local = self.webrtc.get_property("local-description")
        self.offer = local.sdp.as_text()
        self.posted_at = time.monotonic()
        self.answer, self.session_url = post_offer(self.endpoint, self.offer)
        answer = only_tcp_candidates(self.answer) if self.tcp_only else self.answer
        _, sdp = GstSdp.SDPMessage.new_from_text(answer)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self._promise("set-remote-description", answer)

    def state(self):
        connection = self.webrtc.get_property("connection-state").value_nick
        ice = self.webrtc.get_property("ice-connection-state").value_nick
        errors = f"; errors: {' | '.join(self.errors[-3:])}" if self.errors else ""
        return f"connection {connection}, ICE {ice}{errors}"

    async def start(self):
        await asyncio.to_thread(self._start)

    async def delete(self):
        return await asyncio.to_thread(delete_session, self.session_url)

    async def close(self):
        await asyncio.to_thread(self.pipeline.set_state, Gst.State.NULL)


class Publisher(_WebRtcPeer):
    """videotestsrc → x264enc or vp8enc, audiotestsrc → opusenc, into a sendonly webrtcbin
    with bundle-policy max-bundle (one transport, as WHIP encoders use)."""

    def __init__(self, endpoint, codec, width, height, fps):
        launch = (
            "webrtcbin name=webrtc bundle-policy=max-bundle"
            f" videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1"
            f" ! videoconvert ! queue ! {VIDEO_ENCODERS[codec]} ! webrtc."
            " audiotestsrc is-live=true wave=sine freq=400 ! audioconvert ! audioresample"
            f" ! audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay ! {OPUS_CAPS} ! webrtc."
        )
        super().__init__(Gst.parse_launch(launch), endpoint)
        self.size = (width, height)

    def _start(self):
        index = 0
        while (transceiver := self.webrtc.emit("get-transceiver", index)) is not None:
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            index += 1
        self.pipeline.set_state(Gst.State.PLAYING)
        self._wait_for_caps()
        self._negotiate()

    def _wait_for_caps(self):
        """The offer's fmtp (H264 packetization-mode, profile-level-id) comes from the caps the
        payloaders negotiated: offer only once every sink pad of webrtcbin has them."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        pads = self.webrtc.sinkpads
        while not all(p.get_current_caps() for p in pads):
            if time.monotonic() > deadline:
                raise TimeoutError(f"webrtcbin sink pads without caps after {STEP_TIMEOUT_S} s: {self.errors}")
            time.sleep(0.05)


class Viewer(_WebRtcPeer):
    """A recvonly webrtcbin (video `codec` + Opus); each incoming stream goes through decodebin,
    whose decoded buffers are counted into `self.decoded`."""

    def __init__(self, endpoint, codec, tcp_only=False):
        pipeline = Gst.Pipeline.new("viewer")
        webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        pipeline.add(webrtc)
        super().__init__(pipeline, endpoint, tcp_only)
        self.decoded = Decoded()
        recvonly = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        self.webrtc.emit("add-transceiver", recvonly, Gst.Caps.from_string(VIEWER_CAPS[codec]))
        self.webrtc.emit("add-transceiver", recvonly, Gst.Caps.from_string(OPUS_CAPS))
        self.webrtc.connect("pad-added", self._on_rtp_pad)

    def _on_rtp_pad(self, _webrtc, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decodebin = Gst.ElementFactory.make("decodebin")
        decodebin.connect("pad-added", self._on_decoded_pad)
        self.pipeline.add(decodebin)
        decodebin.sync_state_with_parent()
        pad.link(decodebin.get_static_pad("sink"))

    def _on_decoded_pad(self, _decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = caps.get_structure(0).get_name()
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        if kind.startswith("video/"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self._count_video)
        elif kind.startswith("audio/"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self._count_audio)

    def _count_video(self, pad, _info):
        structure = pad.get_current_caps().get_structure(0)
        self.decoded.video(structure.get_value("width"), structure.get_value("height"))
        return Gst.PadProbeReturn.OK

    def _count_audio(self, _pad, _info):
        self.decoded.audio()
        return Gst.PadProbeReturn.OK

    def _start(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        self._negotiate()
