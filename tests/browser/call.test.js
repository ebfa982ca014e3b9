// Real browsers in real calls through the huddle binary. One server for the whole file;
// the tests run in order and build on each other (the same three people stay in the room).
//
// Budget: at most 3 Chromium and 1 Firefox at once (the machine has 2 cores).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  join, launchChromium, launchFirefox, measure, received, recordRow, repoRoot, sleep, startServer,
  stopAll, track, waitDecoding,
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

function report(label, value) {
  console.log(`${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
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
  });

  test('three Chromium participants see and hear each other', { timeout: 90_000 }, () => recordRow({
    row: 'chromium-call-3',
    stack: 'Chromium',
    role: 'call-page member (room WebSocket)',
    scenario: 'three Chromium call pages join one room one after the other and decode each other; '
      + 'figures: the worst of the 6 received streams',
  }, async (row) => {
    const names = ['Ada', 'Ben', 'Cy'];
    const launched = await Promise.all(names.map((n) => launchChromium(n)));
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
});
