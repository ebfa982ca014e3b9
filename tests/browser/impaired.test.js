// Chromium behind an impaired link: its WHEP viewer reaches huddle only through `impair-relay`
// (tests/src/bin/impair-relay.rs), a seeded user-space relay that caps bandwidth and loses
// packets (the kernel here has no netem). The publisher is Chromium too: WHIP, its camera in
// three simulcast layers, its microphone with Opus RED offered as Chromium offers it.
//
// - A capped viewer: huddle's send-side estimate from Chromium's transport-wide feedback moves it
//   to a lower layer while an uncapped viewer stays on the full one, its video keeps decoding,
//   and it comes back up when the cap lifts.
// - Audio under loss: two viewers behind the same loss, one negotiating RED and one not; what
//   Chromium conceals of the audio it plays.
// - A tight cap: video pauses, audio goes on playing, video resumes when the cap lifts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  launchChromium, serverAddress, sleep, startRelay, startServer, stopAll, subscriptions, toneFile, viaRelay,
} from './harness.js';

const watchdog = setTimeout(async () => {
  console.error('impaired tests: watchdog fired after 250 s; stopping everything');
  await stopAll();
  process.exit(1);
}, 250_000);
watchdog.unref();

const room = `imp-${process.pid}`;
const tone = toneFile();
let server;
let browser;

function report(label, value) {
  console.log(`${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}

/** In the page: a WHIP publisher, camera at 960x540 in three layers (as the call page sends). */
function publish(page, url) {
  return page.evaluate(async (url) => {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 960, height: 540 } });
    const pc = new RTCPeerConnection();
    pc.addTransceiver(media.getAudioTracks()[0], { direction: 'sendonly' });
    pc.addTransceiver(media.getVideoTracks()[0], {
      direction: 'sendonly',
      sendEncodings: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
    });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      setTimeout(resolve, 3000);
    });
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    const answer = await res.text();
    if (res.status !== 201) return { status: res.status, answer };
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    window.pc = pc;
    return { status: res.status, answer };
  }, url);
}

/** The rids the page's publisher sends with frames, and their widths. */
function layersSent(page) {
  return page.evaluate(async () => Object.fromEntries([...(await window.pc.getStats()).values()]
    .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video' && s.rid && s.framesPerSecond > 0)
    .map((s) => [s.rid, s.frameWidth])));
}

/**
 * A WHEP viewer in a fresh page whose media goes through a relay with `down` and `up` impairments;
 * `red: false` removes audio/red from its offer (`setCodecPreferences`). Resolves once connected.
 * The page samples its inbound video every 50 ms into `window.samples`.
 */
async function viewer(name, { down = 'none', up = 'none', seed = 1, red = true } = {}) {
  const page = await browser.browser.newPage();
  await page.goto(`${server.base}/`);
  const offered = await page.evaluate(async (red) => {
    const pc = new RTCPeerConnection();
    const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    if (!red) {
      audio.setCodecPreferences(RTCRtpReceiver.getCapabilities('audio').codecs.filter((c) => c.mimeType.toLowerCase() !== 'audio/red'));
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      setTimeout(resolve, 3000);
    });
    window.pc = pc;
    return pc.localDescription.sdp;
  }, red);
  // Without its own candidates the page is reachable only as the relay's address, which huddle
  // learns from the checks that come through it.
  const body = offered.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n');
  const res = await fetch(`${server.base}/whep/${room}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body });
  const answer = await res.text();
  assert.equal(res.status, 201, `${name}: WHEP POST: ${answer}`);
  const to = serverAddress(answer);
  assert.ok(to, `${name}: a UDP candidate in the answer: ${answer}`);
  const relay = await startRelay(to, { down, up, seed });
  await page.evaluate(async (sdp) => {
    // Played out, so that Chromium's jitter buffer runs and counts what it conceals.
    window.pc.ontrack = (e) => {
      if (e.track.kind !== 'audio') return;
      window.player = new Audio();
      window.player.srcObject = new MediaStream([e.track]);
      window.player.play();
    };
    await window.pc.setRemoteDescription({ type: 'answer', sdp });
    window.samples = [];
    setInterval(async () => {
      for (const s of (await window.pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          window.samples.push({ t: Date.now(), frames: s.framesDecoded || 0, width: s.frameWidth || 0 });
        }
      }
    }, 50);
  }, viaRelay(answer, relay.clientSide));
  await waitPage(page, () => window.pc.connectionState === 'connected', `${name} connected`, 10000);
  return { name, page, relay };
}

async function waitPage(page, fn, what, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** The subscriptions report's row for the subscriber that is not in `known`. */
async function newSubscriber(known) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const row = (await subscriptions(server.base, room)).find((s) => !known.includes(s.subscriber));
    if (row) return row.subscriber;
    await sleep(100);
  }
  throw new Error('no new subscriber in the subscriptions report');
}

async function row(subscriber) {
  return (await subscriptions(server.base, room)).find((s) => s.subscriber === subscriber);
}

const layer = (r) => (r && r.current && !r.paused ? r.current.rid : null);
/** Held below the full layer (or paused) by the subscriber's own estimate or loss. */
const limited = (r) => Boolean(r) && ['bandwidth', 'congestion', 'settling', 'paused'].includes(r.reason) && layer(r) !== 'f';

/** Polls `subscriber`'s row every 100 ms until `pred`; ms it took, or null. */
async function until(subscriber, pred, within) {
  const t0 = Date.now();
  while (Date.now() - t0 < within) {
    if (await pred(await row(subscriber))) return Date.now() - t0;
    await sleep(100);
  }
  return null;
}

/** From a page's samples between `from` and `to`: the longest time without a new decoded frame. */
async function longestFreeze(page, from, to) {
  return page.evaluate(({ from, to }) => {
    let last = null;
    let longest = 0;
    for (const s of window.samples) {
      if (s.t < from || s.t > to) continue;
      if (last === null || s.frames > last.frames) {
        if (last !== null) longest = Math.max(longest, s.t - last.t);
        last = s;
      }
    }
    return last === null ? null : Math.max(longest, to - last.t);
  }, { from, to });
}

/** Audio a page played: concealed ÷ total samples, and packets, from its inbound-rtp stats. */
function audio(page) {
  return page.evaluate(async () => {
    const stats = [...(await window.pc.getStats()).values()];
    const a = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio') || {};
    return {
      packetsReceived: a.packetsReceived || 0,
      packetsLost: a.packetsLost || 0,
      bytesReceived: a.bytesReceived || 0,
      totalSamplesReceived: a.totalSamplesReceived || 0,
      concealedSamples: a.concealedSamples || 0,
    };
  });
}

describe('Chromium behind an impaired link', { timeout: 240_000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await launchChromium('impaired', { args: [`--use-file-for-fake-audio-capture=${tone}`] });
    await browser.page.goto(`${server.base}/`);
    const published = await publish(browser.page, `${server.base}/whip/${room}`);
    assert.equal(published.status, 201, published.answer);
    // Chromium ramps its own estimate on loopback before it sends all three layers.
    const deadline = Date.now() + 30000;
    let sent = {};
    while (Object.keys(sent).length < 3) {
      if (Date.now() > deadline) throw new Error(`the publisher sends only ${JSON.stringify(sent)} after 30 s`);
      await sleep(500);
      sent = await layersSent(browser.page);
    }
    report('publisher sends', sent);
  });

  after(async () => {
    clearTimeout(watchdog);
    await stopAll();
    rmSync(tone, { force: true });
  });

  test('a viewer capped at 500 kbit/s moves down a layer and back up; an uncapped one stays on the full layer', { timeout: 90_000 }, async () => {
    const free = await viewer('free', { seed: 11 });
    const freeId = await newSubscriber([]);
    const capped = await viewer('capped', { seed: 12 });
    const cappedId = await newSubscriber([freeId]);
    // Both on the full layer for 2 s running (a fresh viewer's estimate is still ramping).
    const steadyFrom = Date.now();
    let fullSince = null;
    while (fullSince === null || Date.now() - fullSince < 2000) {
      const rows = [await row(freeId), await row(cappedId)];
      fullSince = rows.every((r) => layer(r) === 'f') ? (fullSince ?? Date.now()) : null;
      assert.ok(Date.now() - steadyFrom < 30000, `both viewers on the full layer for 2 s: ${JSON.stringify(rows)}`);
      await sleep(200);
    }

    const capAt = Date.now();
    await capped.relay.set('down', 'cap=500000');
    const timeline = [];
    let downAfter = null;
    while (Date.now() - capAt < 9000) {
      const r = await row(cappedId);
      if (downAfter === null && limited(r)) downAfter = Date.now() - capAt;
      const seen = await capped.page.evaluate(() => window.samples.at(-1));
      timeline.push(`${((Date.now() - capAt) / 1000).toFixed(1)}s ${r.paused ? 'paused' : layer(r)} est ${Math.round((r.estimate || 0) / 1000)}k ${r.reason}; decoded ${seen.frames} at ${seen.width}`);
      await sleep(250);
    }
    const liftAt = Date.now();
    const cappedRow = await row(cappedId);
    const freeRow = await row(freeId);
    const sentAtLift = await layersSent(browser.page);
    const link = (await capped.relay.stats()).down;
    const freeze = await longestFreeze(capped.page, capAt, liftAt);
    const freeFreeze = await longestFreeze(free.page, capAt, liftAt);
    await capped.relay.set('down', 'none');
    // Back up: the layer the uncapped viewer gets (the best the publisher sends now).
    const upAfter = await until(cappedId, async (r) => layer(r) === layer(await row(freeId)) && !limited(r), 15000);
    const width = await capped.page.evaluate(() => window.samples.at(-1).width);
    report('capped viewer, every 250 ms', `\n  ${timeline.join('\n  ')}`);
    report('capped viewer', {
      downAfterMs: downAfter, layerAtLift: cappedRow.current, reasonAtLift: cappedRow.reason, longestFreezeMs: freeze,
      relayDown: link, upAfterLiftMs: upAfter, widthAfter: width,
    });
    report('uncapped viewer', { layerAtLift: freeRow.current, reasonAtLift: freeRow.reason, longestFreezeMs: freeFreeze, publisherSends: sentAtLift });
    assert.ok(downAfter !== null && downAfter <= 5000, `capped viewer held low by its estimate within 5 s (after ${downAfter} ms)`);
    assert.ok(limited(cappedRow), `capped viewer still held low by its estimate when the cap lifts: ${JSON.stringify(cappedRow)}`);
    assert.ok(freeze !== null && freeze <= 1000, `capped viewer's longest freeze while capped ≤ 1 s: ${freeze} ms`);
    assert.ok(!limited(freeRow) && ['f', 'h'].includes(layer(freeRow)), `uncapped viewer is not held low: ${JSON.stringify(freeRow)}`);
    assert.ok(freeFreeze !== null && freeFreeze <= 1000, `uncapped viewer keeps decoding: longest freeze ${freeFreeze} ms`);
    assert.ok(upAfter !== null, `capped viewer back on the uncapped viewer's layer within 15 s of the lift: ${JSON.stringify(await row(cappedId))}`);
    for (const v of [free, capped]) {
      await v.page.close();
      await v.relay.stop();
    }
  });

  test('audio under 5% and 15% loss: what Chromium conceals with Opus RED and without', { timeout: 80_000 }, async () => {
    const results = {};
    for (const loss of [0.05, 0.15]) {
      const withRed = await viewer(`red-${loss}`, { down: `loss=${loss}`, seed: 21, red: true });
      const plain = await viewer(`opus-${loss}`, { down: `loss=${loss}`, seed: 21, red: false });
      await sleep(1500);
      const start = await Promise.all([audio(withRed.page), audio(plain.page)]);
      await sleep(10000);
      const end = await Promise.all([audio(withRed.page), audio(plain.page)]);
      const share = (a, b) => {
        const total = b.totalSamplesReceived - a.totalSamplesReceived;
        return {
          packetsReceived: b.packetsReceived - a.packetsReceived,
          packetsLost: b.packetsLost - a.packetsLost,
          bytesPerPacket: (b.bytesReceived - a.bytesReceived) / Math.max(1, b.packetsReceived - a.packetsReceived),
          concealed: total > 0 ? (b.concealedSamples - a.concealedSamples) / total : null,
        };
      };
      const drops = await Promise.all([withRed.relay.stats(), plain.relay.stats()]);
      results[loss] = {
        red: { ...share(start[0], end[0]), relayLost: drops[0].down.lost, relayReceived: drops[0].down.received },
        opus: { ...share(start[1], end[1]), relayLost: drops[1].down.lost, relayReceived: drops[1].down.received },
      };
      for (const v of [withRed, plain]) {
        await v.page.close();
        await v.relay.stop();
      }
    }
    report('audio concealed (10 s windows)', results);
    for (const [loss, r] of Object.entries(results)) {
      // Chromium's stats name the decoded codec (Opus) for both; a RED packet also carries the
      // previous frame, so it is about twice the size.
      assert.ok(r.red.bytesPerPacket > 1.5 * r.opus.bytesPerPacket, `the RED viewer receives RED at ${loss}: ${JSON.stringify(r)}`);
      assert.ok(r.red.packetsReceived > 300 && r.opus.packetsReceived > 300, `audio flows at ${loss}: ${JSON.stringify(r)}`);
      assert.ok(r.red.concealed < r.opus.concealed, `RED conceals less than plain Opus at ${loss}: ${JSON.stringify(r)}`);
    }
  });
  test('under a 150 kbit/s cap video pauses and audio keeps playing; video resumes when the cap lifts', { timeout: 60_000 }, async () => {
    const known = (await subscriptions(server.base, room)).map((r) => r.subscriber);
    const tight = await viewer('tight', { seed: 31 });
    const id = await newSubscriber(known);
    assert.ok(await until(id, (r) => layer(r) !== null, 15000) !== null, `video flows first: ${JSON.stringify(await row(id))}`);
    await sleep(2000);
    const capAt = Date.now();
    await tight.relay.set('down', 'cap=150000');
    const pausedAfter = await until(id, (r) => r && r.paused, 8000);
    const before = await audio(tight.page);
    await sleep(6000);
    const during = await audio(tight.page);
    const stillPaused = (await row(id)).paused;
    const framesAt = async () => tight.page.evaluate(() => window.samples.at(-1).frames);
    const framesBefore = await framesAt();
    await tight.relay.set('down', 'none');
    const liftAt = Date.now();
    const resumedAfter = await until(id, (r) => r && !r.paused && layer(r) !== null, 15000);
    let decodingAfter = null;
    while (resumedAfter !== null && Date.now() - liftAt < 20000) {
      if ((await framesAt()) > framesBefore + 10) {
        decodingAfter = Date.now() - liftAt;
        break;
      }
      await sleep(100);
    }
    const packets = during.packetsReceived - before.packetsReceived;
    const total = during.totalSamplesReceived - before.totalSamplesReceived;
    const concealed = total > 0 ? (during.concealedSamples - before.concealedSamples) / total : null;
    report('tight cap', {
      pausedAfterMs: pausedAfter, audioPacketsIn6s: packets, audioConcealed: concealed, stillPaused,
      resumedAfterLiftMs: resumedAfter, decodingAfterLiftMs: decodingAfter, sinceCapMs: liftAt - capAt,
    });
    assert.ok(pausedAfter !== null, `video paused under the cap: ${JSON.stringify(await row(id))}`);
    assert.ok(stillPaused, 'video stays paused while capped');
    assert.ok(packets >= 250, `audio keeps flowing while video is paused: ${packets} packets in 6 s`);
    assert.ok(concealed !== null && concealed < 0.1, `audio plays while video is paused: ${concealed} concealed`);
    assert.ok(resumedAfter !== null && decodingAfter !== null, `video resumes and decodes within 15 s of the lift: ${JSON.stringify(await row(id))}`);
    await tight.page.close();
    await tight.relay.stop();
  });
});
