// WHIP and WHEP with the browser's own RTCPeerConnection, as small JS WHIP/WHEP clients do:
// one Chromium page publishes its (fake) camera and microphone to /whip/{room}, another page
// watches /whep/{room} and must decode the video. Then both DELETE their sessions.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, sleep, startServer, stopAll } from './harness.js';

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

/** In the page: make a pc, offer, wait for ICE gathering, POST, apply the answer. */
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
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const answer = await res.text();
      if (res.status !== 201) return { status: res.status, body: answer };
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      window.pc = pc;
      window.session = new URL(res.headers.get('Location'), url).href;
      return { status: res.status, location: window.session, etag: res.headers.get('ETag') };
    },
    { url, kind },
  );
}

async function inboundVideo(page) {
  return page.evaluate(async () => {
    const stats = await window.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        return { framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, codec: s.codecId };
      }
    }
    return { framesDecoded: 0, frameWidth: 0 };
  });
}

test('a browser publishes with WHIP and another browser watches with WHEP', async () => {
  const room = `ww-${process.pid}`;
  const origin = server.base;
  const publisher = await browser.browser.newPage();
  await publisher.goto(`${origin}/`);
  const published = await connect(publisher, `${origin}/whip/${room}`, 'whip');
  assert.equal(published.status, 201, JSON.stringify(published));
  assert.match(published.etag, /^".+"$/);

  const viewer = await browser.browser.newPage();
  await viewer.goto(`${origin}/`);
  const started = Date.now();
  const watched = await connect(viewer, `${origin}/whep/${room}`, 'whep');
  assert.equal(watched.status, 201, JSON.stringify(watched));

  let video = { framesDecoded: 0 };
  let firstFrameMs;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    video = await inboundVideo(viewer);
    if (video.framesDecoded > 0 && firstFrameMs === undefined) firstFrameMs = Date.now() - started;
    if (video.framesDecoded > 30) break;
    await sleep(250);
  }
  console.log(`WHEP viewer in Chromium: first decoded frame ${firstFrameMs} ms after POST; ${JSON.stringify(video)}`);
  assert.ok(video.framesDecoded > 30 && video.frameWidth > 0, `viewer decodes the WHIP browser: ${JSON.stringify(video)}`);

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
});
