// TURN for real: Debian's coturn (`turnserver`) started here on loopback ports with the TURN
// REST scheme (`use-auth-secret`, `static-auth-secret`), huddle started with `--turn … --turn-secret`.
// Chromium pages take the ICE servers from the WHIP/WHEP endpoint's `Link` headers (OPTIONS, RFC
// 9725 §4.6) and are forced to relay (`iceTransportPolicy: 'relay'`): a WHIP publisher over
// TURN/UDP and a WHEP viewer over TURN/TCP. The viewer must decode the publisher's video, and
// both selected candidate pairs must be relay → huddle's host candidate.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, sleep, startServer, stopAll, track } from './harness.js';

const TURNSERVER = process.env.TURNSERVER_BIN || '/usr/bin/turnserver';
const SECRET = `turn-secret-${process.pid}`;

const watchdog = setTimeout(async () => {
  console.error('turn tests: watchdog fired after 120 s; stopping everything');
  await stopAll();
  process.exit(1);
}, 120_000);
watchdog.unref();

/** A TCP port free on 127.0.0.1 now (coturn listens on it for UDP and TCP). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** coturn on 127.0.0.1:`port`, relaying from 127.0.0.1, TURN REST credentials only. */
async function startCoturn(port) {
  const probe = spawnSync(TURNSERVER, ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(`${TURNSERVER} is missing (${probe.error.code}): install Debian's coturn `
      + '(scripts/test does: apt-get install coturn), or set TURNSERVER_BIN');
  }
  const relayLow = 20000 + (process.pid % 2000) * 10;
  const args = [
    '-n', // no configuration file
    `--listening-ip=127.0.0.1`,
    `--relay-ip=127.0.0.1`,
    `--listening-port=${port}`,
    `--min-port=${relayLow}`,
    `--max-port=${relayLow + 9}`,
    '--use-auth-secret',
    `--static-auth-secret=${SECRET}`,
    '--realm=huddle.test',
    '--fingerprint',
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--no-multicast-peers',
    '--simple-log',
    '--log-file=stdout',
    '--verbose',
  ];
  const proc = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  const keep = (chunk) => {
    for (const line of chunk.toString().split('\n')) if (line) logs.push(line);
    if (logs.length > 3000) logs.splice(0, logs.length - 3000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const coturn = {
    proc,
    logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      if ((await Promise.race([exited.then(() => true), sleep(3000)])) !== true) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
  track(coturn);
  // Ready once it accepts TCP on its port (its UDP listener starts with it).
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`turnserver exited with ${proc.exitCode}:\n${logs.join('\n')}`);
    const ok = await new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true)); // in use: coturn has it
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`turnserver did not listen on ${port} in 10 s:\n${logs.join('\n')}`);
    await sleep(100);
  }
  return coturn;
}

let coturn;
let turnPort;
let server;
let browser;

before(async () => {
  turnPort = await freePort();
  coturn = await startCoturn(turnPort);
  server = await startServer({
    args: [
      '--turn', `turn:127.0.0.1:${turnPort}?transport=udp`,
      '--turn', `turn:127.0.0.1:${turnPort}?transport=tcp`,
      '--turn-secret', SECRET,
    ],
  });
  browser = await launchChromium('turn');
});

after(async () => {
  await stopAll();
});

/**
 * In the page: OPTIONS the endpoint for its `Link: rel="ice-server"` headers, keep the TURN server
 * of `transport`, make a relay-only peer connection with it, offer, POST, apply the answer.
 */
function connect(page, url, kind, transport) {
  return page.evaluate(
    async ({ url, kind, transport }) => {
      const options = await fetch(url, { method: 'OPTIONS' });
      const links = (options.headers.get('link') || '').split(/,\s*(?=<)/).filter(Boolean);
      const iceServers = links.map((l) => {
        const m = l.match(/^<([^>]+)>;\s*rel="ice-server"(?:;\s*username="([^"]*)")?(?:;\s*credential="([^"]*)")?/);
        if (!m) return null;
        return m[2] != null ? { urls: [m[1]], username: m[2], credential: m[3] } : { urls: [m[1]] };
      }).filter((s) => s && s.urls[0].startsWith('turn:') && s.urls[0].endsWith(`transport=${transport}`));
      const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
      if (kind === 'whip') {
        const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
      } else {
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.addTransceiver('audio', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 5000);
      });
      const candidates = pc.localDescription.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const answer = await res.text();
      const result = { status: res.status, links, iceServers, candidates };
      if (res.status !== 201) return { ...result, body: answer };
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      window.pc = pc;
      window.session = new URL(res.headers.get('Location'), url).href;
      return result;
    },
    { url, kind, transport },
  );
}

/** The selected candidate pair, its two candidates, and what the page receives. */
function selected(page) {
  return page.evaluate(async () => {
    const stats = [...(await window.pc.getStats()).values()];
    const transport = stats.find((s) => s.type === 'transport');
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId)
      || stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
    const local = pair && stats.find((s) => s.id === pair.localCandidateId);
    const remote = pair && stats.find((s) => s.id === pair.remoteCandidateId);
    const video = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
    return {
      state: window.pc.connectionState,
      local: local && {
        type: local.candidateType, address: local.address, port: local.port,
        protocol: local.protocol, relayProtocol: local.relayProtocol, url: local.url,
      },
      remote: remote && { type: remote.candidateType, address: remote.address, port: remote.port, protocol: remote.protocol },
      framesDecoded: video?.framesDecoded || 0,
      frameWidth: video?.frameWidth || 0,
    };
  });
}

function describe(p) {
  return `local ${p.local.type} ${p.local.address}:${p.local.port} (relay over ${p.local.relayProtocol} via ${p.local.url}) `
    + `→ remote ${p.remote.type} ${p.remote.address}:${p.remote.port}/${p.remote.protocol}`;
}

test('relay-only Chromium peers reach huddle through coturn (TURN/UDP publisher, TURN/TCP viewer) with TURN REST credentials', async () => {
  const room = `turn-${process.pid}`;
  const origin = server.base;
  const publisher = await browser.browser.newPage();
  await publisher.goto(`${origin}/`);
  const published = await connect(publisher, `${origin}/whip/${room}`, 'whip', 'udp');
  console.log(`Link headers (OPTIONS /whip/${room}):\n  ${published.links.join('\n  ')}`);
  assert.equal(published.iceServers.length, 1, `one TURN/UDP server from the Link headers: ${JSON.stringify(published)}`);
  assert.match(published.iceServers[0].username, /^\d+:/, 'TURN REST username expiry:identity');
  assert.ok(published.candidates.length > 0 && published.candidates.every((c) => / typ relay /.test(c)),
    `relay candidates only, from coturn: ${JSON.stringify(published.candidates)}\n${coturn.logs.slice(-40).join('\n')}`);
  assert.equal(published.status, 201, JSON.stringify(published));

  const viewer = await browser.browser.newPage();
  await viewer.goto(`${origin}/`);
  const watched = await connect(viewer, `${origin}/whep/${room}`, 'whep', 'tcp');
  assert.ok(watched.candidates.length > 0 && watched.candidates.every((c) => / typ relay /.test(c)),
    `relay candidates only: ${JSON.stringify(watched.candidates)}`);
  assert.equal(watched.status, 201, JSON.stringify(watched));

  let seen = {};
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    seen = { publisher: await selected(publisher), viewer: await selected(viewer) };
    if (seen.viewer.framesDecoded > 30 && seen.publisher.local && seen.viewer.local) break;
    await sleep(300);
  }
  const why = () => `${JSON.stringify(seen)}\n--- coturn:\n${coturn.logs.slice(-40).join('\n')}\n--- huddle:\n${server.logs.slice(-30).join('\n')}`;
  assert.ok(seen.publisher.local && seen.viewer.local, `both have a selected pair: ${why()}`);
  console.log(`publisher (WHIP) selected pair: ${describe(seen.publisher)}`);
  console.log(`viewer (WHEP) selected pair:    ${describe(seen.viewer)}`);
  for (const [who, transport] of [['publisher', 'udp'], ['viewer', 'tcp']]) {
    const p = seen[who];
    assert.equal(p.local.type, 'relay', `${who} sends through the relay: ${why()}`);
    assert.equal(p.local.relayProtocol, transport, `${who} reaches coturn over ${transport}: ${why()}`);
    assert.equal(p.local.address, '127.0.0.1');
    assert.equal(p.remote.type, 'host', `${who}'s remote is huddle's host candidate: ${why()}`);
    assert.equal(p.remote.protocol, 'udp');
  }
  assert.ok(seen.viewer.framesDecoded > 30 && seen.viewer.frameWidth > 0,
    `the viewer decodes the publisher's video through coturn: ${why()}`);
  console.log(`viewer decoded ${seen.viewer.framesDecoded} frames (${seen.viewer.frameWidth} px wide) through coturn`);
  // The server's diagnosis of each session names the relay pair.
  for (const page of [publisher, viewer]) {
    const session = await page.evaluate(() => window.session);
    const id = session.split('/').pop();
    const r = await fetch(`${origin}/sessions/${id}/diagnosis`);
    assert.equal(r.status, 200, `diagnosis of ${session}`);
    const d = await r.json();
    console.log(`diagnosis of ${session}: state ${d.state}, pair ${JSON.stringify(d.pair)}`);
    assert.equal(d.state, 'connected', JSON.stringify(d));
    assert.ok(d.pair && d.pair.relay === true && d.pair.remote_type === 'relay',
      `the diagnosis says media goes through the relay: ${JSON.stringify(d)}`);
  }
  const allocations = coturn.logs.filter((l) => /ALLOCATE processed, success/i.test(l)).length;
  console.log(`coturn: ${allocations} successful allocations logged`);

  for (const page of [viewer, publisher]) {
    const status = await page.evaluate(async () => (await fetch(window.session, { method: 'DELETE' })).status);
    assert.equal(status, 200);
  }
});
