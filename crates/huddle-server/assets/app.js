// Entry point: the landing form at `/`, the call at `/room/{room}?name=…`.

import { Call } from './call.js';
import { ui } from './ui.js';

const ROOM_NAME = /^[A-Za-z0-9._~-]{1,64}$/;
const params = new URLSearchParams(location.search);
const token = params.get('token');
const match = location.pathname.match(/^\/room\/([^/]+)\/?$/);

function roomUrl(room, name) {
  const q = new URLSearchParams({ name });
  if (token) q.set('token', token);
  return `/room/${encodeURIComponent(room)}?${q}`;
}

function rememberName(name) {
  try {
    localStorage.setItem('huddle.name', name);
  } catch {
    // storage disabled
  }
}
function rememberedName() {
  try {
    return localStorage.getItem('huddle.name') || '';
  } catch {
    return '';
  }
}

function landing() {
  ui.show('landing');
  const room = ui.$('#landing-room');
  const name = ui.$('#landing-name');
  room.value = `room-${Math.random().toString(36).slice(2, 8)}`;
  name.value = rememberedName();
  (name.value ? room : name).focus();
  ui.$('#landing-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const r = room.value.trim();
    const n = name.value.trim();
    if (!ROOM_NAME.test(r)) {
      room.setCustomValidity('Use 1-64 letters, digits, . _ ~ or -');
      room.reportValidity();
      return;
    }
    rememberName(n);
    location.href = roomUrl(r, n);
  });
  room.addEventListener('input', () => room.setCustomValidity(''));
}

function prejoin(room) {
  ui.show('prejoin');
  ui.$('#prejoin-room').textContent = room;
  const name = ui.$('#prejoin-name');
  name.value = rememberedName();
  name.focus();
  ui.$('#prejoin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = name.value.trim();
    if (!n) return;
    rememberName(n);
    history.replaceState(null, '', roomUrl(room, n));
    enterCall(room, n);
  });
}

function enterCall(room, name) {
  ui.show('call');
  document.title = `${room} · huddle`;
  ui.$('#room-name').textContent = room;
  const call = new Call({ room, name, token });
  expose(call);

  ui.$('#mute-audio').addEventListener('click', () => call.setMuted('audio', !call.muted.audio));
  ui.$('#mute-video').addEventListener('click', () => call.setMuted('video', !call.muted.video));
  ui.$('#share').addEventListener('click', () => (call.screen && call.screen.track ? call.stopShare() : call.startShare()));
  ui.$('#toggle-stats').addEventListener('click', (ev) => {
    const on = document.body.classList.toggle('hide-quality');
    ev.currentTarget.setAttribute('aria-pressed', String(!on));
  });
  ui.$('#toggle-chat').addEventListener('click', (ev) => {
    const hidden = document.body.classList.toggle('hide-chat');
    ev.currentTarget.setAttribute('aria-pressed', String(!hidden));
  });
  ui.$('#leave').addEventListener('click', () => {
    call.leave();
    ui.$('#rejoin').href = roomUrl(room, name);
    ui.show('left');
  });
  ui.$('#chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = ui.$('#chat-input');
    if (call.sendChat(input.value)) input.value = '';
  });
  window.addEventListener('pagehide', () => call.leave());
  call.start().catch((err) => call.fail(`Cannot start the call: ${err && err.message ? err.message : err}`));
}

/** `window.huddle`: what tests (and curious people in the console) read. */
function expose(call) {
  window.huddle = {
    get id() {
      return call.id;
    },
    get room() {
      return call.room;
    },
    get name() {
      return call.name;
    },
    get state() {
      return call.state;
    },
    get peerConnection() {
      return call.pc;
    },
    /** The server's connectivity diagnosis of this page, once it sent one. */
    get diagnosis() {
      return call.diagnosis;
    },
    get chatOpen() {
      return !!call.dc && call.dc.readyState === 'open';
    },
    chat: call.chat,
    log: call.log,
    errors: call.errors,
    timings: call.timings,
    tiles: () => call.tiles(),
    /** Samples stats now and returns the tiles. */
    refresh: async () => {
      await call.sampleStats();
      return call.tiles();
    },
    /** The server's last word: active speaker, `quality` per received track, unavailable tracks. */
    get speaker() {
      return call.speaker;
    },
    get quality() {
      return { estimate: call.quality.estimate, tracks: [...call.quality.tracks.values()] };
    },
    get unavailable() {
      return [...call.unavailable.values()];
    },
    /** This page's screen share: the section it sends on and its track id, once known. */
    get screen() {
      const s = call.screen;
      return s && { sharing: !!s.track, mid: s.mid, trackId: s.trackId };
    },
    get ownTracks() {
      return call.ownTracks;
    },
    sendChat: (text) => call.sendChat(text),
    setMuted: (kind, muted) => call.setMuted(kind, muted),
    leave: () => call.leave(),
  };
}

if (!match) {
  landing();
} else {
  let room;
  try {
    room = decodeURIComponent(match[1]);
  } catch {
    room = '';
  }
  if (!ROOM_NAME.test(room)) {
    landing();
    ui.banner(`"${room}" is not a valid room name`);
  } else {
    const name = (params.get('name') || '').trim();
    if (name) enterCall(room, name);
    else prejoin(room);
  }
}
