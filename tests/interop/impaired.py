"""A peer behind `impair-relay` (tests/src/bin/impair-relay.rs), the tests' seeded user-space
relay: the viewer's answer names the relay instead of huddle, so its media goes only through
the relay, which loses, delays or caps it as told."""

import asyncio
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RELAY_BIN = os.environ.get("HUDDLE_IMPAIR_RELAY") or os.path.join(ROOT, "target", "debug", "impair-relay")
REPLY_TIMEOUT_S = 5


def server_address(sdp):
    """The first UDP candidate's (ip, port) in `sdp`: where huddle receives media."""
    for line in sdp.splitlines():
        f = line.split(" ")
        if line.startswith("a=candidate:") and len(f) > 5 and f[2].lower() == "udp":
            return f[4], int(f[5])
    return None


def via_relay(sdp, address):
    """`sdp` with every UDP candidate pointed at `address` ("ip:port") and the others dropped."""
    ip, port = address.rsplit(":", 1)
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            f = line.split(" ")
            if len(f) <= 5 or f[2].lower() != "udp":
                continue
            f[4], f[5] = ip, port
            line = " ".join(f)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


class Relay:
    """One running impair-relay towards huddle's `server` (ip, port)."""

    def __init__(self, proc, hello):
        self._proc = proc
        self.client_side = hello["client_side"]

    @classmethod
    async def start(cls, server, up="none", down="none", seed=1):
        proc = await asyncio.create_subprocess_exec(
            RELAY_BIN,
            "--server", f"{server[0]}:{server[1]}",
            "--up", up,
            "--down", down,
            "--seed", str(seed),
            "--max-seconds", "120",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(proc.stdout.readline(), REPLY_TIMEOUT_S)
        if not line:
            raise RuntimeError(f"{RELAY_BIN} exited at once (build it: cargo build -p huddle-tests --bin impair-relay)")
        return cls(proc, json.loads(line))

    async def ask(self, command):
        self._proc.stdin.write(f"{command}\n".encode())
        await self._proc.stdin.drain()
        answer = json.loads(await asyncio.wait_for(self._proc.stdout.readline(), REPLY_TIMEOUT_S))
        if "error" in answer:
            raise RuntimeError(f"impair-relay {command}: {answer['error']}")
        return answer

    async def stats(self):
        return await self.ask("stats")

    async def stop(self):
        if self._proc.returncode is None:
            self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 2)
            except asyncio.TimeoutError:
                self._proc.kill()
