// Real browsers in real calls through the huddle binary. One server for the whole file;
// the tests run in order and build on each other (the same three people stay in the room).
//
// Budget: at most 3 Chromium and 1 Firefox at once (the machine has 2 cores).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  join, launchChromium, launchFirefox, measure, received, recordRow, repoRoot, sleep, startServer,
  stopAll, subscriptions, toneFile, track, waitDecoding,
} from './harness.js';

const SCREENSHOT = path.join(repoRoot, 'artifacts', 'call.png');

// Everything stops by itself, whatever hangs.
const watchdog = setTimeout(async () => {
  console.error('browser tests: watchdog fired after 270 s; stopping everything');
  await stopAll();
  process.exit(1);
}, 270_000);
watchdog.unref();

const room = `it-${process.pid}-${Date.now().toString(36)}`;
let server;
const people = {}; // name → Participant
// A steady tone for a microphone: speaker detection ignores Chromium's default short beeps.
const tone = toneFile();
const TALKING = { args: [`--use-file-for-fake-audio-capture=${tone}`] };

function report(label, value) {
  console.log(`${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}

/** Waits until `p` sends its camera as three simulcast layers; returns them by rid. */
async function threeLayersSent(p, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let layers;
  for (;;) {
    layers = await p.evaluate(async () => {
      const stats = [...(await window.huddle.peerConnection.getStats()).values()];
      return Object.fromEntries(stats.filter((s) => s.type === 'outbound-rtp' && s.kind === 'video' && s.rid).map((s) => [s.rid, {
        width: s.frameWidth, height: s.frameHeight, fps: Math.round(s.framesPerSecond || 0), active: s.active, limited: s.qualityLimitationReason,
      }]));
    });
    const sending = Object.values(layers).filter((l) => l.active !== false && l.fps > 0 && l.width > 0);
    if (sending.length === 3) return layers;
    if (Date.now() > deadline) throw new Error(`${p.name}: not sending three simulcast layers after ${timeout} ms: ${JSON.stringify(layers)}`);
    await sleep(300);
  }
}

/** Waits until `subscriber`'s subscription to `track` (the server's report) satisfies `pred`. */
async function waitSubscription(subscriber, track, pred, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let row;
  while (Date.now() < deadline) {
    row = (await subscriptions(server.base, room)).find((s) => s.subscriber === subscriber && s.track === track);
    if (row && pred(row)) return row;
    await sleep(200);
  }
  throw new Error(`subscriptions: timed out waiting for ${what}; last ${JSON.stringify(row)}`);
}

async function waitStats(pred, what, timeout = 8000) {
  const deadline = Date.now() + timeout;
  let s;
  while (Date.now() < deadline) {
    s = await server.stats();
    if (pred(s)) return s;
    await sleep(200);
  }
  throw new Error(`server stats: timed out waiting for ${what}; last ${JSON.stringify(s)}`);
}

describe('huddle in real browsers', { timeout: 260_000 }, () => {
  before(async () => {
    server = await startServer();
    report('server', server.base);
  });

  after(async () => {
    clearTimeout(watchdog);
    await stopAll();
    rmSync(tone, { force: true });
  });

  test('three Chromium participants see and hear each other', { timeout: 90_000 }, () => recordRow({
    row: 'chromium-call-3',
    stack: 'Chromium',
    role: 'call-page member (room WebSocket)',
    scenario: 'three Chromium call pages join one room one after the other and decode each other; '
      + 'figures: the worst of the 6 received streams',
  }, async (row) => {
    const names = ['Ada', 'Ben', 'Cy'];
    const launched = await Promise.all(names.map((n) => launchChromium(n, TALKING)));
    for (const p of launched) people[p.name] = p;
    row.stack_version = await launched[0].version();
    // Join one after the other: the interesting case is people already in the room.
    for (const p of launched) await join(p, server.base, room);
    const ids = launched.map((p) => p.id);
    report('ids', Object.fromEntries(launched.map((p) => [p.name, p.id])));

    const first = {};
    for (const p of launched) {
      const others = ids.filter((id) => id !== p.id);
      const tiles = await waitDecoding(p, others, { timeout: 30000 });
      first[p.name] = Object.fromEntries(
        tiles.map((t) => [t.name, { joinToFirstFrameMs: t.firstDecodedAt, trackToFirstFrameMs: t.trackToFrameMs }]),
      );
    }
    report('time to first decoded frame (ms since this page sent join; ms since ontrack)', first);

    // Frames keep coming: framesDecoded grows over a few seconds, on every page, from everyone.
    const before = await Promise.all(launched.map((p) => p.tiles()));
    await sleep(3000);
    const later = await Promise.all(launched.map((p) => p.tiles()));
    const sender = (tile) => launched.find((p) => p.id === tile.participant);
    Object.assign(row, await received(launched[0]));
    measure(row, launched.flatMap((p, i) => later[i].map((tile) => ({ viewer: p, tile, sentAt: sender(tile).joinedAt }))));
    const figures = {};
    launched.forEach((p, i) => {
      figures[p.name] = {};
      for (const t of later[i]) {
        const b = before[i].find((x) => x.participant === t.participant);
        assert.ok(b, `${p.name}: tile ${t.participant} appeared late`);
        assert.ok(
          t.framesDecoded > b.framesDecoded + 10,
          `${p.name}: video from ${t.name} stalled (${b.framesDecoded} → ${t.framesDecoded} frames in 3 s)`,
        );
        assert.ok(t.frameWidth > 0, `${p.name}: no frame size for ${t.name}`);
        assert.ok(t.audioPackets > b.audioPackets, `${p.name}: audio from ${t.name} stalled`);
        figures[p.name][t.name] = {
          framesDecoded: t.framesDecoded,
          fps: t.fps == null ? null : Math.round(t.fps),
          size: `${t.frameWidth}x${t.frameHeight}`,
          videoKbps: t.videoKbps == null ? null : Math.round(t.videoKbps),
          audioPackets: t.audioPackets,
          packetsLost: t.packetsLost,
          jitterMs: t.jitterMs,
          rttMs: t.rttMs,
        };
      }
      assert.equal(later[i].length, 2, `${p.name} should have 2 remote tiles`);
    });
    report('after 3 more seconds', figures);
    const count = await people.Ada.evaluate(() => document.querySelector('#count').dataset.count);
    assert.equal(count, '3');
  }));

  test('chat reaches the other two', { timeout: 30_000 }, async () => {
    const { Ada, Ben, Cy } = people;
    await Ada.waitFor(() => window.huddle.chatOpen, undefined, { what: 'chat channel open' });
    const text = `hello from Ada ${Date.now() % 100000}`;
    await Ada.page.fill('#chat-input', text);
    await Ada.page.click('#chat-form button[type=submit]');
    for (const p of [Ben, Cy]) {
      const got = await p.waitFor(
        (text) => window.huddle.chat.find((m) => m.text === text),
        text,
        { timeout: 10000, what: `chat message "${text}"` },
      );
      assert.equal(got.name, 'Ada');
      assert.equal(got.from, Ada.id);
      assert.ok(Math.abs(got.at - Date.now()) < 60_000, 'chat `at` is a recent time in ms');
      const shown = await p.evaluate((text) => document.querySelector('#chat-list').textContent.includes(text), text);
      assert.ok(shown, `${p.name}: message not shown in the chat list`);
    }
    const own = await Ada.evaluate(() => window.huddle.chat.filter((m) => m.own).length);
    assert.equal(own, 1, 'own message shown locally');
    // A reply, so the screenshot shows a conversation.
    await Ben.page.fill('#chat-input', 'hi Ada, I can see you');
    await Ben.page.click('#chat-form button[type=submit]');
    await Ada.waitFor(() => window.huddle.chat.some((m) => m.name === 'Ben'), undefined, { what: 'reply' });
  });

  test('mute shows a badge to the others', { timeout: 20_000 }, async () => {
    const { Ada, Ben } = people;
    await Ben.page.click('#mute-audio');
    await Ada.waitFor(
      (id) => {
        const tile = document.querySelector(`.tile[data-participant="${id}"]`);
        return tile && tile.dataset.audioMuted === 'true' && !tile.querySelector('.badge.mic').hidden;
      },
      Ben.id,
      { timeout: 5000, what: "Ben's muted badge" },
    );
    await Ben.page.click('#mute-audio');
    await Ada.waitFor(
      (id) => document.querySelector(`.tile[data-participant="${id}"]`).dataset.audioMuted === 'false',
      Ben.id,
      { timeout: 5000, what: "Ben's badge to go away" },
    );
  });

  test('screenshot of a call', { timeout: 20_000 }, async () => {
    const { Ada } = people;
    await sleep(1200); // one more quality update
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    const visible = await Ada.evaluate(() => ({
      quality: [...document.querySelectorAll('.tile .quality')].filter((q) => q.offsetParent && q.children.length).length,
      chat: !!document.querySelector('#chat').offsetParent,
    }));
    assert.equal(visible.quality, 2, 'quality panels shown on both remote tiles');
    assert.ok(visible.chat, 'chat panel shown');
    await Ada.page.screenshot({ path: SCREENSHOT });
    report('screenshot', SCREENSHOT);
  });

  test('a participant who leaves is gone everywhere within 2 s', { timeout: 30_000 }, async () => {
    const { Ada, Ben, Cy } = people;
    const statsBefore = await server.stats();
    report('server stats with 3 in the room', statsBefore);
    const t0 = Date.now();
    await Cy.page.click('#leave');
    const gone = await Promise.all(
      [Ada, Ben].map(async (p) => {
        await p.waitFor(
          (id) => !document.querySelector(`.tile[data-participant="${id}"]`) && !window.huddle.tiles().some((t) => t.participant === id),
          Cy.id,
          { timeout: 5000, interval: 50, what: "Cy's tile to go" },
        );
        return Date.now() - t0;
      }),
    );
    report('tile removed after Leave (ms) on Ada, Ben', gone);
    for (const ms of gone) assert.ok(ms <= 2000, `tile removed after ${ms} ms (limit 2000)`);
    const statsAfter = await waitStats(
      (s) => s.participants === statsBefore.participants - 1 && s.tracks <= statsBefore.tracks - 2,
      'participants and tracks to drop by Cy',
    );
    report('server stats after Cy left', statsAfter);
    assert.ok(statsAfter.subscriptions < statsBefore.subscriptions, 'subscriptions dropped');
    const count = await Ada.evaluate(() => document.querySelector('#count').dataset.count);
    assert.equal(count, '2');
    await Cy.stop();
    delete people.Cy;
  });

  test('simulcast: three layers out, the one a tile needs in', { timeout: 60_000 }, () => recordRow({
    row: 'chromium-call-simulcast',
    stack: 'Chromium',
    role: 'call-page member publishing simulcast (rids q/h/f) to a member whose tile changes size',
    scenario: "Ada's camera (960x540) goes out as three rid layers; Ben's tile of her is made small (he gets q, "
      + 'reason tile-size), restored (a higher layer) and pinned to f; figures: what Ben decodes of Ada',
  }, async (row) => {
    const { Ada, Ben } = people;
    row.stack_version = await Ada.version();
    const sent = await threeLayersSent(Ada);
    report('Ada sends', sent);
    assert.ok(sent.q.width < sent.h.width && sent.h.width < sent.f.width, `layers q < h < f: ${JSON.stringify(sent)}`);

    const camera = (await Ben.tiles()).find((t) => t.participant === Ada.id).videos[0].track;
    const video = `.tile[data-participant="${Ada.id}"]:not(.screen) video`;
    const gets = (pred, what) => waitSubscription(Ben.id, camera, pred, what);
    report("Ben's subscription to Ada at first", await gets(() => true, 'a subscription'));
    /** Ben decodes Ada's camera at `width`, frame after frame. */
    const decodes = async (width) => {
      const [before] = await Ben.waitFor(async ({ id, width }) => {
        const v = (await window.huddle.refresh()).find((t) => t.participant === id).videos[0];
        return v.frameWidth === width && [v];
      }, { id: Ada.id, width }, { timeout: 8000, what: `Ada's camera decoded at width ${width}` });
      return Ben.waitFor(async ({ id, width, frames }) => {
        const v = (await window.huddle.refresh()).find((t) => t.participant === id).videos[0];
        return v.frameWidth === width && v.framesDecoded >= frames && v;
      }, { id: Ada.id, width, frames: before.framesDecoded + 10 }, { timeout: 5000, what: `10 more frames at width ${width}` });
    };

    // Small tile: the lowest layer covers it.
    await Ben.evaluate((sel) => Object.assign(document.querySelector(sel).style, { width: '160px', height: '90px' }), video);
    const small = await gets((s) => s.tile && s.tile.width === 160 && s.tile.height === 90
      && s.current && s.current.rid === 'q' && s.reason === 'tile-size', 'q for a 160x90 tile');
    report("Ben's subscription to Ada, small tile", small);
    await decodes(small.current.width);
    const panel = await Ben.waitFor((id) => {
      const why = document.querySelector(`.tile[data-participant="${id}"]:not(.screen) .quality dd.why`);
      return why && why.textContent;
    }, Ada.id, { timeout: 3000, what: 'the reason in the quality panel' });
    assert.equal(panel, small.reason_text);

    // Back to its size in the grid: a higher layer, after the up-switch hold.
    await Ben.evaluate((sel) => Object.assign(document.querySelector(sel).style, { width: '', height: '' }), video);
    const restored = await gets((s) => s.tile && s.tile.width > 160 && s.current && s.current.rid !== 'q',
      'a higher layer for the restored tile');
    report("Ben's subscription to Ada, tile restored", restored);
    await decodes(restored.current.width);

    // Pinned: the top layer whatever the tile.
    await Ben.page.selectOption(`.tile[data-participant="${Ada.id}"]:not(.screen) select.pin`, 'f');
    const pinned = await gets((s) => s.current && s.current.rid === 'f' && s.reason === 'pinned' && s.pin === 'f', 'f when pinned');
    await decodes(pinned.current.width);
    // The page hears it too (`quality`), and its layer menu says so.
    await Ben.waitFor((id) => {
      const v = window.huddle.tiles().find((t) => t.participant === id).videos[0];
      return v.layer === 'f' && v.reason === 'pinned';
    }, Ada.id, { timeout: 5000, what: "the page told of the pinned layer" });
    await Ben.page.selectOption(`.tile[data-participant="${Ada.id}"]:not(.screen) select.pin`, '');
    await gets((s) => s.pin === null && s.reason !== 'pinned', 'back to auto');
    report('layers Ben received', { small: small.current, restored: restored.current, pinned: pinned.current });

    const tile = (await Ben.tiles()).find((t) => t.participant === Ada.id);
    Object.assign(row, await received(Ben));
    measure(row, [{ viewer: Ben, tile, sentAt: Ada.joinedAt }]);
  }));

  test('the active speaker is highlighted', { timeout: 30_000 }, async () => {
    const { Ada, Ben } = people;
    const speaking = (p, selector) => p.waitFor((sel) => {
      const tile = document.querySelector(sel);
      return tile && tile.classList.contains('speaking');
    }, selector, { timeout: 6000, what: `${selector} highlighted` });
    // Both have a steady tone for a microphone: the one not muted speaks.
    await Ada.evaluate(() => window.huddle.setMuted('audio', true));
    await speaking(Ada, `.tile[data-participant="${Ben.id}"]`);
    await speaking(Ben, '.tile.local');
    const t0 = Date.now();
    await Ben.evaluate(() => window.huddle.setMuted('audio', true));
    await Ada.evaluate(() => window.huddle.setMuted('audio', false));
    await speaking(Ben, `.tile[data-participant="${Ada.id}"]`);
    report('speaker switched after (ms)', Date.now() - t0);
    const others = await Ben.evaluate(() => document.querySelectorAll('.tile.speaking').length);
    assert.equal(others, 1, 'one tile highlighted');
    await Ben.evaluate(() => window.huddle.setMuted('audio', false));
  });

  test('screen share: the others see a second tile', { timeout: 30_000 }, () => recordRow({
    row: 'chromium-call-screen-share',
    stack: 'Chromium',
    role: 'call-page member sharing its screen (getDisplayMedia, then publish on the server-offered section)',
    scenario: "Ada shares her (fake) screen; Ben decodes it on a second tile of hers; first frame from Ada's "
      + "publish request; figures: Ben's frames of the screen, audio packets of Ada's microphone",
  }, async (row) => {
    const { Ada, Ben } = people;
    row.stack_version = await Ada.version();
    await Ada.page.click('#share');
    const screen = await Ben.waitFor(async (id) => {
      const t = (await window.huddle.refresh()).find((x) => x.participant === id);
      const s = t && t.videos.find((v) => v.screen);
      return s && s.framesDecoded > 0 && s.frameWidth > 0 && s;
    }, Ada.id, { timeout: 15000, what: "Ada's screen decoded" });
    const publishedAt = await Ada.evaluate(() => performance.timeOrigin + window.huddle.timings.sharePublished);
    const shown = await Ben.evaluate((id) => [...document.querySelectorAll(`.tile[data-participant="${id}"]`)]
      .map((t) => ({ screen: t.classList.contains('screen'), name: t.querySelector('.name').textContent })), Ada.id);
    assert.deepEqual(shown, [{ screen: false, name: 'Ada' }, { screen: true, name: 'Ada · screen' }]);
    assert.equal(await Ada.evaluate(() => document.querySelector('#share').textContent), 'Stop sharing');
    await sleep(2000);
    const tile = (await Ben.tiles()).find((t) => t.participant === Ada.id);
    const [camera, later] = tile.videos;
    assert.ok(!camera.screen && camera.framesDecoded > 0, 'the camera stays on her first tile');
    assert.ok(later.framesDecoded > screen.framesDecoded + 10, `the screen keeps decoding (${screen.framesDecoded} → ${later.framesDecoded})`);
    report("Ada's screen on Ben", { size: `${later.frameWidth}x${later.frameHeight}`, framesDecoded: later.framesDecoded, layer: later.layer, reason: later.reason });
    Object.assign(row, await received(Ben));
    row.first_frame_ms = Math.round(Ben.joinedAt + screen.firstDecodedAt - publishedAt);
    row.video_frames_decoded = later.framesDecoded;
    row.audio_frames_decoded = tile.audioPackets;
  }));

  test('stopping the share removes its tile', { timeout: 20_000 }, async () => {
    const { Ada, Ben } = people;
    // The server names the page's own screen track (track-published with its mid): the page
    // unpublishes it by that id.
    await Ada.waitFor(() => Boolean(window.huddle.screen && window.huddle.screen.trackId), undefined,
      { timeout: 5000, what: 'the server to name the screen track' });
    await Ada.page.click('#share');
    // Stopping is asynchronous (the sender lets go of the track first): wait for the button.
    await Ada.waitFor(() => document.querySelector('#share').textContent === 'Share screen', undefined,
      { timeout: 5000, interval: 50, what: 'the share button to offer sharing again' });
    await Ben.waitFor((id) => !document.querySelector(`.tile.screen[data-participant="${id}"]`)
      && window.huddle.tiles().find((x) => x.participant === id).videos.length === 1, Ada.id,
    { timeout: 5000, interval: 100, what: "Ada's screen tile to go" });
    await waitDecoding(Ben, [Ada.id], { timeout: 5000 });
  });

  test('a late joiner decodes video within 1 s of its tracks arriving', { timeout: 60_000 }, () => recordRow({
    row: 'chromium-call-late-joiner',
    stack: 'Chromium',
    role: 'call-page member (joins a call in progress)',
    scenario: 'a fourth Chromium page joins the two left in the room; each side decodes the other, '
      + 'the newcomer within 1 s of its tracks arriving; figures: the worst of the newcomer\'s 2 received streams',
  }, async (row) => {
    const { Ada, Ben } = people;
    const Dee = await launchChromium('Dee');
    people.Dee = Dee;
    row.stack_version = await Dee.version();
    await join(Dee, server.base, room);
    const tiles = await waitDecoding(Dee, [Ada.id, Ben.id], { timeout: 20000 });
    const figures = Object.fromEntries(tiles.map((t) => [t.name, {
      trackToFirstFrameMs: t.trackToFrameMs, joinToFirstFrameMs: t.firstDecodedAt,
    }]));
    report('late joiner Dee: ontrack → first decoded frame', figures);
    for (const p of [Ada, Ben]) await waitDecoding(p, [Dee.id], { timeout: 15000 });
    Object.assign(row, await received(Dee));
    measure(row, (await Dee.tiles()).map((tile) => ({ viewer: Dee, tile, sentAt: [Ada, Ben].find((p) => p.id === tile.participant).joinedAt })));
    for (const t of tiles) {
      assert.ok(t.trackToFrameMs != null && t.trackToFrameMs <= 1000,
        `Dee decoded ${t.name}'s video ${t.trackToFrameMs} ms after its track arrived (limit 1000)`);
    }
  }));

  test('a WHIP publisher shows up as a decoded tile', { timeout: 60_000 }, async (t) => {
    const cmd = process.env.HUDDLE_WHIP_PUBLISH;
    if (!cmd) {
      t.skip('HUDDLE_WHIP_PUBLISH is not set (a command taking a WHIP URL that publishes until killed)');
      return;
    }
    await recordRow({
      row: 'chromium-call-views-str0m-whip',
      stack: 'Chromium',
      role: 'call-page member viewing a WHIP publisher (str0m, VP8 clip)',
      scenario: 'the whip_publish example (str0m, a real VP8 clip and Opus) publishes into the call; '
        + 'a Chromium page decodes its tile, first frame from spawning the publisher',
    }, async (row) => {
      const { Ada } = people;
      row.stack_version = await Ada.version();
      const url = `${server.base}/whip/${room}`;
      const out = [];
      const spawnedAt = Date.now();
      const proc = spawn('sh', ['-c', `exec ${cmd} "$1"`, 'sh', url], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      proc.stdout.on('data', (c) => out.push(c.toString()));
      proc.stderr.on('data', (c) => out.push(c.toString()));
      const exited = new Promise((r) => proc.once('exit', r));
      track({
        async stop() {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          try { process.kill(-proc.pid, 'SIGINT'); } catch { /* gone */ }
          if ((await Promise.race([exited.then(() => true), sleep(3000)])) !== true) {
            try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
          }
        },
      });
      let whip;
      try {
        whip = await Ada.waitFor(
          async () => (await window.huddle.refresh()).find((t) => t.source === 'whip' && t.framesDecoded > 0 && t.frameWidth > 0),
          undefined,
          { timeout: 30000, interval: 300, what: 'a decoded WHIP tile' },
        );
      } catch (e) {
        throw new Error(`${e.message}\n--- publisher output:\n${out.join('').slice(-3000)}`);
      }
      report('WHIP tile on Ada', whip);
      await sleep(2000);
      const later = (await Ada.tiles()).find((t) => t.participant === whip.participant);
      Object.assign(row, await received(Ada));
      measure(row, [{ viewer: Ada, tile: later || whip, sentAt: spawnedAt }]);
      assert.ok(later && later.framesDecoded > whip.framesDecoded + 10,
        `WHIP video keeps decoding (${whip.framesDecoded} → ${later && later.framesDecoded} frames in 2 s)`);
      report('WHIP tile on Ada 2 s later', { framesDecoded: later.framesDecoded, fps: later.fps, trackToFirstFrameMs: later.trackToFrameMs, size: `${later.frameWidth}x${later.frameHeight}` });
      // Ctrl-C: the publisher DELETEs its session; its tile goes.
      try { process.kill(-proc.pid, 'SIGINT'); } catch { /* gone */ }
      await Promise.race([exited, sleep(3000)]);
      await Ada.waitFor(
        (id) => !window.huddle.tiles().some((t) => t.participant === id),
        whip.participant,
        { timeout: 5000, what: 'the WHIP tile to go after the publisher stopped' },
      );
    });
  });

  test('Firefox and Chromium in one call decode each other', { timeout: 90_000 }, () => recordRow({
    row: 'firefox-call-member',
    stack: 'Firefox',
    role: 'call-page member (room WebSocket)',
    scenario: 'a Firefox and a Chromium call page in one room decode each other; figures: what Firefox decodes',
  }, (foxRow) => recordRow({
    row: 'chromium-call-member-with-firefox',
    stack: 'Chromium',
    role: 'call-page member with a Firefox member',
    scenario: 'a Firefox and a Chromium call page in one room decode each other; figures: what Chromium decodes',
  }, async (chromeRow) => {
    // Free the CPU first: the three-person room is done.
    await Promise.all(Object.values(people).map((p) => p.stop()));
    for (const k of Object.keys(people)) delete people[k];
    const xroom = `${room}-x`;
    const [fox, chrome] = await Promise.all([launchFirefox('Fox'), launchChromium('Chrome')]);
    people.Fox = fox;
    people.Chrome = chrome;
    foxRow.stack_version = await fox.version();
    chromeRow.stack_version = await chrome.version();
    await join(fox, server.base, xroom);
    await join(chrome, server.base, xroom);
    const onFox = await waitDecoding(fox, [chrome.id], { timeout: 30000 });
    const onChrome = await waitDecoding(chrome, [fox.id], { timeout: 30000 });
    // Firefox publishes its camera as three simulcast layers too.
    report('Firefox sends', await threeLayersSent(fox));
    await sleep(2000);
    const [f2, c2] = await Promise.all([fox.tiles(), chrome.tiles()]);
    Object.assign(foxRow, await received(fox));
    Object.assign(chromeRow, await received(chrome));
    measure(foxRow, f2.map((tile) => ({ viewer: fox, tile, sentAt: chrome.joinedAt })));
    measure(chromeRow, c2.map((tile) => ({ viewer: chrome, tile, sentAt: fox.joinedAt })));
    const pick = (tiles) => tiles.map((t) => ({
      from: t.name, framesDecoded: t.framesDecoded, size: `${t.frameWidth}x${t.frameHeight}`,
      audioPackets: t.audioPackets, joinToFirstFrameMs: t.firstDecodedAt, trackToFirstFrameMs: t.trackToFrameMs,
    }));
    report('Firefox receives', pick(f2));
    report('Chromium receives', pick(c2));
    assert.ok(f2[0].framesDecoded > onFox[0].framesDecoded, 'Firefox keeps decoding');
    assert.ok(c2[0].framesDecoded > onChrome[0].framesDecoded, 'Chromium keeps decoding');
    // Chat across engines too.
    await fox.waitFor(() => window.huddle.chatOpen, undefined, { what: 'chat open' });
    await fox.evaluate(() => window.huddle.sendChat('hallo from Firefox'));
    await chrome.waitFor(() => window.huddle.chat.some((m) => m.text === 'hallo from Firefox'), undefined, { timeout: 10000, what: 'chat from Firefox' });
    // Chromium leaves: Firefox drops its tile too.
    const t0 = Date.now();
    await chrome.page.click('#leave');
    await fox.waitFor((id) => !document.querySelector(`.tile[data-participant="${id}"]`), chrome.id,
      { timeout: 5000, interval: 50, what: "Chrome's tile to go" });
    report('Firefox removed the tile after Leave (ms)', Date.now() - t0);
    assert.ok(Date.now() - t0 <= 2500);
  })));

  test('a server shutdown ends the call on the page, with its reason', { timeout: 20_000 }, async () => {
    const { Fox } = people; // still in the call from the test before
    assert.equal(await Fox.evaluate(() => window.huddle.state), 'connected');
    await server.stop();
    const banner = await Fox.waitFor(() => window.huddle.state === 'ended'
      && [...document.querySelectorAll('.banner')].map((b) => b.textContent).join(' '), undefined,
    { timeout: 5000, interval: 100, what: 'the page to end the call' });
    report('the page says', banner);
    assert.match(banner, /The call ended: /);
    assert.ok(!banner.includes('Disconnected'), `a bye is not a disconnection: ${banner}`);
  });
});
