// A page whose media cannot reach huddle is told why, in words. The page's peer connection is
// limited to relay candidates and given no TURN server (as a network that blocks UDP leaves a
// browser without TURN): it offers no candidate at all. The server gives up after its connect
// timeout and sends the page its connectivity diagnosis, which the page shows.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startServer, stopAll } from './harness.js';

const watchdog = setTimeout(async () => {
  console.error('diagnosis test: watchdog fired after 90 s; stopping everything');
  await stopAll();
  process.exit(1);
}, 90_000);
watchdog.unref();

after(async () => {
  await stopAll();
});

test('a page that cannot send media is shown why its connection failed', { timeout: 60_000 }, async () => {
  const server = await startServer({ args: ['--connect-timeout', '3s'] });
  const page = await launchChromium('Una');
  await page.page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = function RelayOnly(config) {
      return new Native({ ...config, iceServers: [], iceTransportPolicy: 'relay' });
    };
    window.RTCPeerConnection.prototype = Native.prototype;
  });
  await page.goto(`${server.base}/room/diagnosis?name=Una`);
  const shown = await page.waitFor(
    () => window.huddle && window.huddle.errors.find((e) => e.startsWith('Media connection failed:')),
    undefined,
    { timeout: 20000, what: 'the server\'s diagnosis on the page' },
  );
  const d = await page.evaluate(() => window.huddle.diagnosis);
  console.log(`diagnosis shown by the page: ${shown}`);
  assert.equal(d.state, 'failed');
  assert.equal(d.reason, 'no_candidates', `reason ${d.reason}: ${d.text}`);
  assert.equal(d.pair, null, 'no pair was ever used');
  assert.ok(shown.includes(d.text), 'the page shows the reason in words');
  assert.ok(shown.includes('your browser offered: none'), shown);
  const banner = await page.evaluate(() => document.body.innerText);
  assert.ok(banner.includes(d.text), 'the reason is on screen');
  // The server logged the same failure, with its reason as a field.
  assert.ok(
    server.logs.some((l) => l.includes('connection failed') && l.includes('no_candidates')),
    `no "connection failed" log line:\n${server.logs.slice(-20).join('\n')}`,
  );
});
