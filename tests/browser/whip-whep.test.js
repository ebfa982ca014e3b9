// WHIP and WHEP with the browser's own RTCPeerConnection, as small JS WHIP/WHEP clients do:
// one Chromium page publishes its (fake) camera and microphone to /whip/{room}, another page
// watches /whep/{room} and must decode the video. Then both DELETE their sessions.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, received, recordRow, sleep, startServer, stopAll } from './harness.js';

const watchdog = setTimeout(async () => {
  console.error('whip-whep tests: watchdog fired after 120 s; stopping everything');
  await stopAll();
  process.exit(1);
}, 120_000);
watchdog.unref();

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium('whip-whep');
});

after(async () => {
  await stopAll();
});

/**
 * In the page: make a pc, offer, wait for ICE gathering, POST, apply the answer. `postedAt`: when
 * the POST went out (ms since the epoch).
 */
async function connect(page, url, kind) {
  return page.evaluate(
    async ({ url, kind }) => {
      const pc = new RTCPeerConnection();
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
        setTimeout(resolve, 3000);
      });
      const postedAt = Date.now();
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const answer = await res.text();
      if (res.status !== 201) return { status: res.status, body: answer, postedAt };
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      window.pc = pc;
      window.session = new URL(res.headers.get('Location'), url).href;
      return { status: res.status, location: window.session, etag: res.headers.get('ETag'), postedAt };
    },
    { url, kind },
  );
}

async function inbound(page) {
  return page.evaluate(async () => {
    const got = { framesDecoded: 0, frameWidth: 0, audioPackets: 0 };
    for (const s of (await window.pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        Object.assign(got, { framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0 });
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') got.audioPackets = s.packetsReceived || 0;
    }
    return got;
  });
}

test('a browser publishes with WHIP and another browser watches with WHEP', () => recordRow({
  row: 'chromium-whip-to-whep',
  stack: 'Chromium',
  role: 'WHIP publisher → WHEP viewer (RTCPeerConnection, both Chromium)',
  scenario: 'a Chromium page publishes its fake camera and microphone with WHIP, another watches with WHEP; '
    + 'first frame from the viewer\'s POST',
}, async (row) => {
  row.stack_version = await browser.version();
  const room = `ww-${process.pid}`;
  const origin = server.base;
  const publisher = await browser.browser.newPage();
  await publisher.goto(`${origin}/`);
  const published = await connect(publisher, `${origin}/whip/${room}`, 'whip');
  assert.equal(published.status, 201, JSON.stringify(published));
  assert.match(published.etag, /^".+"$/);

  const viewer = await browser.browser.newPage();
  await viewer.goto(`${origin}/`);
  const watched = await connect(viewer, `${origin}/whep/${room}`, 'whep');
  assert.equal(watched.status, 201, JSON.stringify(watched));

  let media = { framesDecoded: 0 };
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    media = await inbound(viewer);
    if (media.framesDecoded > 0) row.first_frame_ms ??= Date.now() - watched.postedAt;
    if (media.framesDecoded > 30) break;
    await sleep(row.first_frame_ms == null ? 20 : 250);
  }
  Object.assign(row, await received(viewer));
  row.video_frames_decoded = media.framesDecoded;
  row.audio_frames_decoded = media.audioPackets;
  console.log(`WHEP viewer in Chromium: first decoded frame ${row.first_frame_ms} ms after POST; ${JSON.stringify(media)}`);
  assert.ok(media.framesDecoded > 30 && media.frameWidth > 0, `viewer decodes the WHIP browser: ${JSON.stringify(media)}`);
  assert.ok(media.audioPackets > 0, `viewer receives the WHIP browser's audio: ${JSON.stringify(media)}`);

  for (const page of [viewer, publisher]) {
    const status = await page.evaluate(async () => (await fetch(window.session, { method: 'DELETE' })).status);
    assert.equal(status, 200);
  }
  const deadlineEmpty = Date.now() + 5000;
  let s = await server.stats();
  while (s.participants !== 0 && Date.now() < deadlineEmpty) {
    await sleep(200);
    s = await server.stats();
  }
  assert.equal(s.participants, 0, `server holds no participant: ${JSON.stringify(s)}`);
}));
