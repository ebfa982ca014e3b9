// Shared plumbing for the browser tests: the huddle server process, browsers, polling.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const HUDDLE_BIN = process.env.HUDDLE_BIN
  ? path.resolve(process.env.HUDDLE_BIN)
  : path.resolve(here, '../../target/debug/huddle');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // huddle listens on 127.0.0.1 in these tests: Firefox gathers no loopback candidates without this.
  'media.peerconnection.ice.loopback': true,
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The log lines of every server started, for failure reports. */
const serverLogs = [];

/** The last warnings and errors the servers logged (newest last), for a failure's first lines. */
function serverWarnings(n) {
  return serverLogs.flatMap((lines) => lines.filter((l) => /\b(WARN|ERROR)\b|"level":"(WARN|ERROR)"/.test(l))).slice(-n);
}

/** Everything started, so a watchdog or `after` can stop it all. */
const running = new Set();
export function track(thing) {
  running.add(thing);
  return thing;
}
export async function stopAll() {
  const all = [...running].reverse();
  running.clear();
  await Promise.all(
    all.map(async (t) => {
      try {
        await Promise.race([t.stop(), sleep(5000)]);
      } catch {
        // best effort
      }
    }),
  );
}

/** Starts the huddle binary on ephemeral ports (and `args`); resolves once it printed its URLs. */
export async function startServer({ args = [] } = {}) {
  const proc = spawn(HUDDLE_BIN, ['--http', '127.0.0.1:0', '--udp', '127.0.0.1:0', '--no-auth', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HUDDLE_TOKEN: '', RUST_LOG: process.env.RUST_LOG || 'huddle=info,huddle_server=info,huddle_core=info' },
  });
  const out = [];
  serverLogs.push(out);
  const remember = (chunk) => {
    for (const line of chunk.toString().split('\n')) if (line) out.push(line);
    if (out.length > 2000) out.splice(0, out.length - 2000);
  };
  proc.stderr.on('data', remember);
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`huddle did not print its health URL in 15 s:\n${out.join('\n')}`)), 15000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${HUDDLE_BIN}: ${e.message} (build it with: cargo build --bin huddle, or set HUDDLE_BIN)`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`huddle exited with ${code} before it was ready:\n${out.join('\n')}`));
    });
    let buffered = '';
    proc.stdout.on('data', (chunk) => {
      remember(chunk);
      buffered += chunk.toString();
      const m = buffered.match(/health:\s+(https?:\/\/\S+?)\/healthz/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  const server = {
    base,
    proc,
    logs: out,
    async stats() {
      const res = await fetch(`${base}/debug/stats`);
      if (!res.ok) throw new Error(`GET /debug/stats: ${res.status}`);
      return res.json();
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGINT');
      if ((await Promise.race([exited.then(() => true), sleep(3000)])) !== true) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
  proc.removeAllListeners('exit');
  return track(server);
}

/** `GET /rooms/{room}/subscriptions`: per subscriber and video track, the layer it gets and why. */
export async function subscriptions(base, room) {
  const res = await fetch(`${base}/rooms/${encodeURIComponent(room)}/subscriptions`);
  if (!res.ok) throw new Error(`GET /rooms/${room}/subscriptions: ${res.status}`);
  return (await res.json()).subscriptions;
}

/** A participant: one browser, one page in a call. Same interface for both engines. */
class Participant {
  constructor(kind, name, browser, page) {
    this.kind = kind;
    this.name = name;
    this.browser = browser;
    this.page = page;
    this.console = [];
    const keep = (line) => {
      this.console.push(line);
      if (this.console.length > 300) this.console.shift();
    };
    page.on('console', (m) => keep(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => keep(`[pageerror] ${e && e.message ? e.message : e}`));
  }

  async goto(url) {
    await this.page.goto(url, { waitUntil: 'load', timeout: 20000 });
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  /** The browser's own version, e.g. "156.0.8078.114" (Puppeteer's Firefox says "firefox/153.8.0"). */
  async version() {
    return (await this.browser.version()).replace(/^firefox\//, '');
  }

  /** Polls `fn(arg)` in the page until it returns something truthy. */
  async waitFor(fn, arg, { timeout = 20000, interval = 200, what = 'condition' } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        last = await this.page.evaluate(fn, arg);
      } catch (e) {
        last = `evaluate failed: ${e.message}`;
      }
      if (last && !(typeof last === 'string' && last.startsWith('evaluate failed'))) return last;
      if (Date.now() > deadline) {
        throw new Error(`${this.name} (${this.kind}): timed out after ${timeout} ms waiting for ${what}; last value ${JSON.stringify(last)}\n${await this.diagnostics()}`);
      }
      await sleep(interval);
    }
  }

  tiles() {
    return this.page.evaluate(() => (window.huddle ? window.huddle.refresh() : []));
  }

  async diagnostics() {
    let state = null;
    try {
      state = await this.page.evaluate(() => window.huddle && {
        id: window.huddle.id,
        state: window.huddle.state,
        pc: window.huddle.peerConnection && {
          connection: window.huddle.peerConnection.connectionState,
          ice: window.huddle.peerConnection.iceConnectionState,
          signaling: window.huddle.peerConnection.signalingState,
          transceivers: window.huddle.peerConnection.getTransceivers().map((t) => `${t.mid}:${t.currentDirection}`),
        },
        errors: window.huddle.errors,
        tiles: window.huddle.tiles(),
        log: window.huddle.log.slice(-40),
      });
    } catch (e) {
      state = `unavailable: ${e.message}`;
    }
    // First what a truncated report must still show: how the socket closed, what the server warned.
    const closes = state && state.log ? state.log.filter((e) => JSON.stringify(e).includes('socket-close')) : [];
    const summary = `--- ${this.name}: socket closes ${JSON.stringify(closes)}; server warnings:\n${serverWarnings(8).join('\n')}`;
    return `${summary}\n--- ${this.name} page state: ${JSON.stringify(state, null, 1)}\n--- ${this.name} console:\n${this.console.slice(-30).join('\n')}`;
  }

  async stop() {
    await this.browser.close();
    if (this.cleanup) this.cleanup();
  }
}

export async function launchChromium(name, { args = [] } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    timeout: 30000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  return track(new Participant('chromium', name, browser, page));
}

/**
 * A one-second 440 Hz tone as a WAV file, for `--use-file-for-fake-audio-capture` (Chromium
 * loops it): a microphone that never pauses, loud enough for speaker detection, which
 * Chromium's default fake device (a short beep a second) is not.
 */
export function toneFile() {
  const file = path.join(tmpdir(), `huddle-tone-${process.pid}.wav`);
  const rate = 48000;
  const bytes = rate * 2;
  const wav = Buffer.alloc(44 + bytes);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + bytes, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28); // bytes per second
  wav.writeUInt16LE(2, 32); // bytes per frame
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write('data', 36);
  wav.writeUInt32LE(bytes, 40);
  for (let i = 0; i < rate; i++) wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  writeFileSync(file, wav);
  return file;
}

export async function launchFirefox(name) {
  const profile = mkdtempSync(path.join(tmpdir(), 'huddle-ff-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: FIREFOX_PREFS,
    timeout: 40000,
    protocolTimeout: 60000,
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const p = new Participant('firefox', name, browser, page);
  p.cleanup = () => rmSync(profile, { recursive: true, force: true });
  return track(p);
}

/**
 * Opens the call page and waits until the page has its id and a connected peer connection.
 * `participant.joinedAt`: when the page sent `join` (ms since the epoch).
 */
export async function join(participant, base, room) {
  const url = `${base}/room/${encodeURIComponent(room)}?name=${encodeURIComponent(participant.name)}`;
  await participant.goto(url);
  participant.id = await participant.waitFor(
    () => window.huddle && window.huddle.id && window.huddle.state === 'connected' && window.huddle.id,
    undefined,
    { timeout: 20000, what: 'welcome and a connected peer connection' },
  );
  participant.joinedAt = await participant.evaluate(() => performance.timeOrigin + window.huddle.timings.joinSent);
  return participant.id;
}

/**
 * Waits until `participant` decodes video and receives audio from every id in `others`, and its
 * page has noted when it decoded the first frame (call.js polls for that apart from the stats).
 */
export function waitDecoding(participant, others, { timeout = 30000, audio = true } = {}) {
  return participant.waitFor(
    async ({ others, audio }) => {
      const tiles = await window.huddle.refresh();
      const ok = others.every((id) => {
        const t = tiles.find((x) => x.participant === id);
        return t && t.framesDecoded > 0 && t.frameWidth > 0 && t.firstDecodedAt != null && (!audio || t.audioPackets > 0);
      });
      return ok ? tiles : null;
    },
    { others, audio },
    { timeout, interval: 300, what: `video${audio ? ' and audio' : ''} from ${others.join(', ')}` },
  );
}

// --- rows of README.md's interop table ------------------------------------------------------

const ROWS_DIR = path.join(repoRoot, 'target', 'interop', 'rows');

/**
 * Runs `body(row)`, which fills in the row's figures as it measures them, then writes the row to
 * target/interop/rows/ROW.json (tests/interop/render.py puts it in README.md's table): pass if
 * `body` returned, fail with its error's message if it threw (the error is rethrown).
 */
export async function recordRow(fields, body) {
  const row = {
    stack_version: null,
    codec: null,
    bundle_policy: null,
    ...fields,
    suite: 'npm test --prefix tests/browser',
    first_frame_ms: null,
    video_frames_decoded: 0,
    audio_frames_decoded: 0,
    unit: 'audio: packets received',
    result: 'fail',
    failures: [],
  };
  try {
    await body(row);
    row.result = 'pass';
  } catch (e) {
    row.failures = [e.message];
    throw e;
  } finally {
    mkdirSync(ROWS_DIR, { recursive: true });
    writeFileSync(path.join(ROWS_DIR, `${row.row}.json`), `${JSON.stringify(row, null, 2)}\n`);
  }
}

/**
 * Sets a row's figures from received `streams`: each a viewer, one of its tiles (call.js
 * `tiles()`) and `sentAt`, when that tile's sender joined. The worst stream counts: fewest video
 * frames decoded and audio packets received, slowest first frame — from the later of the
 * viewer's and the sender's join to the viewer's first decoded frame of that sender.
 */
export function measure(row, streams) {
  const first = streams.map(({ viewer, tile, sentAt }) => (tile.firstDecodedAt == null ? null
    : Math.round(viewer.joinedAt + tile.firstDecodedAt - Math.max(viewer.joinedAt, sentAt))));
  row.first_frame_ms = first.includes(null) ? null : Math.max(...first);
  row.video_frames_decoded = Math.min(...streams.map(({ tile }) => tile.framesDecoded));
  row.audio_frames_decoded = Math.min(...streams.map(({ tile }) => tile.audioPackets));
}

/**
 * What a page's peer connection receives ("VP8+Opus") and its bundle policy: `window.pc` (the
 * WHIP/WHEP test's pages) or the call page's.
 */
export function received(page) {
  return page.evaluate(async () => {
    const pc = window.pc || window.huddle.peerConnection;
    const stats = [...(await pc.getStats()).values()];
    const codec = (s) => stats.find((c) => c.id === s.codecId)?.mimeType.split('/')[1].replace(/^opus$/, 'Opus');
    const names = (kind) => [...new Set(stats.filter((s) => s.type === 'inbound-rtp' && s.kind === kind).map(codec))].join('/');
    return { codec: `${names('video')}+${names('audio')}`, bundle_policy: pc.getConfiguration().bundlePolicy };
  });
}

// --- impaired links -------------------------------------------------------------------------

const IMPAIR_RELAY = process.env.HUDDLE_IMPAIR_RELAY
  ? path.resolve(process.env.HUDDLE_IMPAIR_RELAY)
  : path.resolve(here, '../../target/debug/impair-relay');

/**
 * Starts `impair-relay` (tests/src/bin/impair-relay.rs) towards huddle's UDP address `server`:
 * `up` (peer → huddle) and `down` (huddle → peer) are impairment specs such as `loss=0.05` or
 * `cap=500000`. `set(direction, spec)` changes one from now on, `stats()` counts both.
 */
export async function startRelay(server, { up = 'none', down = 'none', seed = 1 } = {}) {
  const proc = spawn(IMPAIR_RELAY, ['--server', server, '--up', up, '--down', down, '--seed', String(seed), '--max-seconds', '300'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const errors = [];
  proc.stderr.on('data', (c) => errors.push(c.toString()));
  const waiting = [];
  let buffered = '';
  proc.stdout.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const next = waiting.shift();
      if (next) next(JSON.parse(line));
    }
  });
  const reply = () => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`impair-relay did not answer in 5 s: ${errors.join('')}`)), 5000);
    waiting.push((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
  const started = reply();
  proc.on('error', (e) => {
    for (const w of waiting.splice(0)) w({ error: `cannot start ${IMPAIR_RELAY}: ${e.message} (build it with: cargo build -p huddle-tests --bin impair-relay, or set HUDDLE_IMPAIR_RELAY)` });
  });
  const hello = await started;
  if (hello.error) throw new Error(hello.error);
  const ask = async (line) => {
    const answer = reply();
    proc.stdin.write(`${line}\n`);
    const v = await answer;
    if (v.error) throw new Error(`impair-relay ${line}: ${v.error}`);
    return v;
  };
  return track({
    clientSide: hello.client_side,
    set: (direction, spec) => ask(`set ${direction} ${spec}`),
    stats: () => ask('stats'),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin.end();
      if ((await Promise.race([exited.then(() => true), sleep(2000)])) !== true) proc.kill('SIGKILL');
    },
  });
}

/** The first UDP candidate's `ip:port` in `sdp`: where huddle receives media. */
export function serverAddress(sdp) {
  for (const line of sdp.split(/\r?\n/)) {
    const f = line.split(' ');
    if (line.startsWith('a=candidate:') && f[2] && f[2].toLowerCase() === 'udp') return `${f[4]}:${f[5]}`;
  }
  return null;
}

/**
 * `sdp` with every UDP candidate pointed at `relay` (`ip:port`) and other candidates dropped, so
 * the peer reaches huddle only through the relay.
 */
export function viaRelay(sdp, relay) {
  const [ip, port] = [relay.slice(0, relay.lastIndexOf(':')), relay.slice(relay.lastIndexOf(':') + 1)];
  return sdp.split('\r\n').flatMap((line) => {
    if (!line.startsWith('a=candidate:')) return [line];
    const f = line.split(' ');
    if (!f[2] || f[2].toLowerCase() !== 'udp') return [];
    f[4] = ip;
    f[5] = port;
    return [f.join(' ')];
  }).join('\r\n');
}
