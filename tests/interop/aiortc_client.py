"""aiortc as a WHIP publisher (synthetic test pattern + tone) and as a WHEP viewer that counts
what its decoders produce."""

import asyncio
import fractions
import math
import time
from array import array

import aioice.ice
import aiortc
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from decoded import Decoded
from whip import delete_session, post_offer, strip_candidates

VERSION = aiortc.__version__
VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms


def restrict_to_loopback():
    """aioice gathers on every interface but loopback; these tests talk to 127.0.0.1 only."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def configuration(bundle_policy):
    # iceServers=[]: without it aiortc adds a public STUN server.
    return RTCConfiguration(iceServers=[], bundlePolicy=bundle_policy)


class TestPattern(MediaStreamTrack):
    """A moving white bar on grey, `width`x`height` at `fps`."""

    kind = "video"
    POSITIONS = 16

    def __init__(self, width, height, fps):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._planes = [self._planes_with_bar_at(i) for i in range(self.POSITIONS)]
        self._count = 0
        self._start = None

    def _planes_with_bar_at(self, index):
        probe = VideoFrame(self.width, self.height, "yuv420p")
        bar = max(self.width // self.POSITIONS, 2)
        x0 = index * bar
        planes = []
        for plane_index, plane in enumerate(probe.planes):
            rows = plane.buffer_size // plane.line_size
            if plane_index == 0:
                row = bytes([100] * x0 + [235] * bar + [100] * (plane.line_size - x0 - bar))
            else:
                row = bytes([128] * plane.line_size)
            planes.append(row * rows)
        return planes

    async def recv(self):
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, self._planes[self._count % self.POSITIONS]):
            plane.update(data)
        frame.pts = self._count * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class Tone(MediaStreamTrack):
    """A 400 Hz sine, mono 48 kHz, in 20 ms frames (400 Hz fits a frame exactly)."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        samples = array(
            "h",
            (int(6000 * math.sin(2 * math.pi * 400 * i / AUDIO_RATE)) for i in range(AUDIO_SAMPLES)),
        )
        self._pcm = samples.tobytes()
        self._count = 0
        self._start = None

    async def recv(self):
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count * AUDIO_SAMPLES / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._count * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._count += 1
        return frame


def prefer(transceiver, kind, mime_type):
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in codecs if c.mimeType.lower() in (mime_type.lower(), f"{kind}/rtx")]
    transceiver.setCodecPreferences(chosen)


class Publisher:
    """A WHIP publisher: video (`codec`: "VP8" or "H264") + Opus, sendonly.

    `obs_like`: audio first, max-bundle, and the offer's candidates stripped before the POST
    (OBS's libdatachannel never sends candidates and never trickles)."""

    def __init__(self, endpoint, codec, width, height, fps, bundle_policy, obs_like=False):
        self.endpoint = endpoint
        self.codec = codec
        self.size = (width, height)
        self.obs_like = obs_like
        self.pc = RTCPeerConnection(configuration(bundle_policy))
        self._video = TestPattern(width, height, fps)
        self._audio = Tone()
        self.session_url = None
        self.offer = self.answer = None
        self.posted_at = None

    async def start(self):
        kinds = ["audio", "video"] if self.obs_like else ["video", "audio"]
        for kind in kinds:
            if kind == "video":
                t = self.pc.addTransceiver(self._video, direction="sendonly")
                prefer(t, "video", f"video/{self.codec}")
            else:
                t = self.pc.addTransceiver(self._audio, direction="sendonly")
                prefer(t, "audio", "audio/opus")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer = self.pc.localDescription.sdp
        if self.obs_like:
            self.offer = strip_candidates(self.offer)
        self.posted_at = time.monotonic()
        self.answer, self.session_url = await asyncio.to_thread(post_offer, self.endpoint, self.offer)
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer, "answer"))

    def state(self):
        return f"connection {self.pc.connectionState}, ICE {self.pc.iceConnectionState}"

    async def delete(self):
        return await asyncio.to_thread(delete_session, self.session_url)

    async def close(self):
        await self.pc.close()


class Viewer:
    """A WHEP viewer: recvonly video + audio; every decoded frame is counted in `self.decoded`.

    `through`: an async function from huddle's answer to the answer to apply (e.g. one naming an
    impairment relay); the offer then carries no candidates, so huddle knows the viewer only as
    the address its checks come from."""

    def __init__(self, endpoint, bundle_policy, through=None):
        self.endpoint = endpoint
        self.through = through
        self.pc = RTCPeerConnection(configuration(bundle_policy))
        self.decoded = Decoded()
        self.session_url = None
        self.offer = self.answer = None
        self.posted_at = None
        self._tasks = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track):
        consume = self._consume_video if track.kind == "video" else self._consume_audio
        self._tasks.append(asyncio.ensure_future(consume(track)))

    async def _consume_video(self, track):
        try:
            while True:
                frame = await track.recv()
                self.decoded.video(frame.width, frame.height)
        except MediaStreamError:
            pass

    async def _consume_audio(self, track):
        try:
            while True:
                await track.recv()
                self.decoded.audio()
        except MediaStreamError:
            pass

    async def start(self):
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer = self.pc.localDescription.sdp
        if self.through is not None:
            self.offer = strip_candidates(self.offer)
        self.posted_at = time.monotonic()
        self.answer, self.session_url = await asyncio.to_thread(post_offer, self.endpoint, self.offer)
        answer = self.answer if self.through is None else await self.through(self.answer)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def state(self):
        return f"connection {self.pc.connectionState}, ICE {self.pc.iceConnectionState}"

    async def delete(self):
        return await asyncio.to_thread(delete_session, self.session_url)

    async def close(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
