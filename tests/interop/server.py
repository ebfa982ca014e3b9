"""The huddle binary under test: started on ephemeral loopback ports, its log kept in a file."""

import json
import os
import re
import signal
import subprocess
import threading
import urllib.request
from collections import deque

HEALTH = re.compile(r"health:\s+(https?://\S+?)/healthz")
READY_TIMEOUT_S = 15


class Huddle:
    """One huddle process. Its stdout and stderr go, line by line, to `log_path`."""

    def __init__(self, binary, log_path):
        self.binary = binary
        self.log_path = log_path
        self.base = None
        self._tail = deque(maxlen=400)
        self._ready = threading.Event()
        self._proc = None

    def start(self):
        env = dict(os.environ, HUDDLE_TOKEN="", NO_COLOR="1")
        env.setdefault("RUST_LOG", "huddle=info,huddle_server=info,huddle_core=info")
        self._proc = subprocess.Popen(
            [self.binary, "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--no-auth"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT_S) or self.base is None:
            self.stop()
            raise RuntimeError(
                f"huddle ({self.binary}) did not print its health URL within {READY_TIMEOUT_S} s:\n"
                + self.log_tail()
            )
        return self

    def _pump(self):
        with open(self.log_path, "w") as log:
            for line in self._proc.stdout:
                log.write(line)
                log.flush()
                self._tail.append(line.rstrip("\n"))
                match = HEALTH.search(line)
                if match and self.base is None:
                    self.base = match.group(1)
                    self._tail.clear()  # the start-up banner: in the file, not in failure tails
                    self._ready.set()
        self._ready.set()

    def stats(self):
        with urllib.request.urlopen(f"{self.base}/debug/stats", timeout=5) as response:
            return json.load(response)

    def log_tail(self, lines=40):
        return "\n".join(list(self._tail)[-lines:])

    def stop(self):
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=3)
