// Codecs per subscriber, in real Chromium: pages that take only H264 (as Safari may) receive
// H264 publishers, and a VP8 publisher's video is announced to them as unavailable, on its tile.
//
// "Only H264" is forced the way an application would: `setCodecPreferences` on every video
// transceiver before each offer and answer the page makes.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  join, launchChromium, recordRow, startServer, stopAll, waitDecoding,
} from './harness.js';

const room = `codecs-${process.pid}-${Date.now().toString(36)}`;
let server;

/** Runs in the page before call.js: every video section of this page negotiates H264 only. */
function h264Only() {
  const only = () => {
    const caps = RTCRtpReceiver.getCapabilities('video');
    return caps ? caps.codecs.filter((c) => /h264/i.test(c.mimeType)) : [];
  };
  const restrict = (pc) => {
    for (const t of pc.getTransceivers()) {
      const kind = (t.receiver && t.receiver.track && t.receiver.track.kind) || null;
      if (kind === 'video' && only().length) t.setCodecPreferences(only());
    }
  };
  for (const name of ['createOffer', 'createAnswer']) {
    const original = RTCPeerConnection.prototype[name];
    RTCPeerConnection.prototype[name] = function (...args) {
      restrict(this);
      return original.apply(this, args);
    };
  }
  window.h264Available = only().length > 0;
}

async function launchH264Only(name) {
  const p = await launchChromium(name);
  await p.page.addInitScript(h264Only);
  return p;
}

/** What the video sections of `p`'s peer connection negotiated: mid → codec mime types. */
function negotiated(p) {
  return p.evaluate(() => {
    const sdp = window.huddle.peerConnection.currentLocalDescription.sdp;
    const out = {};
    for (const section of sdp.split(/\r\nm=/).slice(1)) {
      if (!section.startsWith('video')) continue;
      const mid = (section.match(/a=mid:(\S+)/) || [])[1];
      out[mid] = [...section.matchAll(/a=rtpmap:\d+ ([\w-]+)\//g)].map((m) => m[1])
        .filter((c) => !/rtx|red|ulpfec/i.test(c));
    }
    return out;
  });
}

describe('codecs per subscriber in Chromium', { timeout: 120_000 }, () => {
  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await stopAll();
  });

  test('H264-only pages receive H264 and are told a VP8 track is unavailable', { timeout: 100_000 }, () => recordRow({
    row: 'chromium-h264-only-subscriber',
    stack: 'Chromium',
    role: 'call-page members negotiating H264 only (setCodecPreferences), with a VP8 member',
    codec: 'H264+Opus',
    bundle_policy: 'max-bundle',
    scenario: 'Ada (VP8, the default) and Eve and Fay (H264 only) in one room: Eve and Fay decode each other\'s '
      + 'H264 and show Ada\'s video as unavailable; Ada decodes both; figures: what Eve decodes of Fay',
  }, async (row) => {
    const [ada, eve, fay] = await Promise.all([launchChromium('Ada'), launchH264Only('Eve'), launchH264Only('Fay')]);
    row.stack_version = await ada.version();
    await join(ada, server.base, room);
    await join(eve, server.base, room);
    assert.ok(await eve.evaluate(() => window.h264Available), 'this Chromium has H264');
    await join(fay, server.base, room);

    await waitDecoding(eve, [fay.id], { timeout: 30000 });
    await waitDecoding(fay, [eve.id], { timeout: 30000 });
    await waitDecoding(ada, [eve.id, fay.id], { timeout: 30000 });
    for (const p of [eve, fay]) {
      const codecs = Object.values(await negotiated(p)).flat();
      assert.ok(codecs.length > 0 && codecs.every((c) => /h264/i.test(c)), `${p.name} negotiated ${codecs}`);
    }
    // Ada's VP8 video cannot reach the H264-only pages: the server says so, and the tile shows it.
    for (const p of [eve, fay]) {
      const said = await p.waitFor((id) => {
        const u = [...window.huddle.unavailable.values()].find((x) => x.participant === id);
        const tile = document.querySelector(`.tile[data-participant="${id}"]`);
        return u && tile && tile.textContent.includes(u.reason) && u.reason;
      }, ada.id, { timeout: 15000, what: "Ada's video announced unavailable on her tile" });
      assert.match(said, /codec/i, `${p.name}: ${said}`);
      // Her audio (Opus) still arrives.
      const tile = (await p.tiles()).find((t) => t.participant === ada.id);
      assert.ok(tile.audioPackets > 0, `${p.name} hears Ada`);
    }
    const tile = (await eve.tiles()).find((t) => t.participant === fay.id);
    row.video_frames_decoded = tile.framesDecoded;
    row.audio_frames_decoded = tile.audioPackets;
    row.first_frame_ms = tile.firstDecodedAt;
  }));
});
