"""What a viewer's decoders produced: counts, resolutions and timing of decoded frames."""

import threading
import time


class Decoded:
    """Counters fed by a decoder's output (aiortc's track.recv(), GStreamer's decodebin pads).

    Safe to feed from GStreamer streaming threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.video_frames = 0
        self.audio_frames = 0
        self.first_video_at = None
        # (width, height) -> [frames, monotonic time of the first one]
        self.sizes = {}
        # monotonic time of every decoded video frame
        self.video_times = []

    def video(self, width, height):
        now = time.monotonic()
        with self._lock:
            self.video_frames += 1
            self.video_times.append(now)
            if self.first_video_at is None:
                self.first_video_at = now
            seen = self.sizes.setdefault((width, height), [0, now])
            seen[0] += 1

    def audio(self):
        with self._lock:
            self.audio_frames += 1

    def frames_at(self, size):
        with self._lock:
            return self.sizes.get(size, [0, None])[0]

    def first_at(self, size):
        with self._lock:
            return self.sizes.get(size, [0, None])[1]

    def resolutions(self):
        with self._lock:
            return {f"{w}x{h}": n for (w, h), (n, _) in self.sizes.items()}

    def window(self, start, end):
        """Video frames decoded between two monotonic times, and the longest time without one."""
        with self._lock:
            times = [t for t in self.video_times if start <= t <= end]
        edges = [start, *times, end]
        return len(times), max(b - a for a, b in zip(edges, edges[1:]))
