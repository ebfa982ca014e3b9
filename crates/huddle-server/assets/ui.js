// DOM for the call view: tiles, controls, chat, banners. No WebRTC in here.

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v || '';
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else if (v !== false && v != null) node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => [...p][0]);
  return (letters.join('') || '?').toUpperCase();
}

/** Plays a media element, remembering it when autoplay is refused until the user interacts. */
const blocked = new Set();
export function play(media) {
  const p = media.play();
  if (p && p.catch) {
    p.catch((err) => {
      if (err && err.name === 'NotAllowedError') {
        blocked.add(media);
        showAudioHint(true);
      }
    });
  }
}
function retryBlocked() {
  for (const m of blocked) {
    m.play().then(() => blocked.delete(m), () => {});
  }
  if (blocked.size === 0) showAudioHint(false);
  else setTimeout(() => { if (blocked.size === 0) showAudioHint(false); }, 200);
}
document.addEventListener('click', retryBlocked, true);
document.addEventListener('keydown', retryBlocked, true);
function showAudioHint(on) {
  const hint = $('#audio-hint');
  if (hint) hint.hidden = !on;
}

/** Layers a viewer may pin (the rids the page publishes), and "auto": the server chooses. */
const PINS = [['', 'auto'], ['q', 'low'], ['h', 'medium'], ['f', 'high']];
/** A tile's size is told again only when it changed by more than this share (and 16 px). */
const SIZE_CHANGE = 0.1;
const SIZE_DEBOUNCE_MS = 300;

/**
 * One participant's tile — video, audio, name, mute badges and the quality panel — or, with
 * `screen`, the tile of its screen share (video only). A remote tile reports the size it shows
 * its video at, and the layer pinned, through `onPreference({track, width, height, pin})`.
 */
export class Tile {
  constructor(info, { local = false, screen = false, onPreference = null } = {}) {
    this.id = info.id;
    this.local = local;
    this.screen = screen;
    this.onPreference = onPreference;
    this.trackId = null; // the server's id of the video track shown
    this.sent = null; // the preference last reported
    this.layer = null; // what the server last said it forwards, and why
    this.stats = null;
    this.unavailable = { audio: null, video: null };
    this.video = el('video', { autoplay: true, playsinline: true, muted: true });
    this.video.muted = true; // the property, not only the attribute: autoplay without a gesture
    this.audio = local || screen ? null : el('audio', { autoplay: true });
    this.avatar = el('div', { class: 'avatar' });
    this.nameEl = el('span', { class: 'name' });
    this.micBadge = el('span', { class: 'badge mic', text: 'mic off', hidden: true });
    this.camBadge = el('span', { class: 'badge cam', text: 'camera off', hidden: true });
    this.sourceBadge = el('span', { class: 'badge source', text: 'WHIP', hidden: true });
    this.pausedBadge = el('span', { class: 'badge paused', text: 'video paused', hidden: true });
    this.quality = el('dl', { class: 'quality' });
    this.notice = el('p', { class: 'notice', hidden: true });
    this.pin = local ? null : el(
      'select',
      { class: 'pin', title: 'Video layer to receive', 'aria-label': 'Video layer', hidden: true, onchange: () => this.reportPreference(true) },
      ...PINS.map(([value, text]) => el('option', { value, text })),
    );
    this.root = el(
      'div',
      { class: `tile${local ? ' local' : ''}${screen ? ' screen' : ''}`, 'data-participant': info.id },
      this.video,
      this.avatar,
      this.notice,
      this.audio,
      el('div', { class: 'label' }, this.nameEl, this.sourceBadge, this.micBadge, this.camBadge, this.pausedBadge),
      this.pin,
      local ? null : this.quality,
    );
    if (!local) {
      this.resizeObserver = new ResizeObserver(() => this.schedulePreference());
      this.resizeObserver.observe(this.video);
      // Its aspect ratio is known (or changed): the size it is shown at may have changed.
      this.video.addEventListener('resize', () => this.schedulePreference());
    }
    this.videoStream = new MediaStream();
    this.audioStream = new MediaStream();
    this.video.srcObject = this.videoStream;
    if (this.audio) this.audio.srcObject = this.audioStream;
    this.update(info);
    this.refreshAvatar();
  }

  update(info) {
    this.info = { ...this.info, ...info };
    const name = this.local ? `${this.info.name} (you)` : this.info.name;
    this.nameEl.textContent = this.screen ? `${name} · screen` : name;
    this.avatar.textContent = initials(this.info.name);
    // A screen tile has no microphone, and the camera's mute is not its own.
    this.micBadge.hidden = this.screen || !this.info.audio_muted;
    this.camBadge.hidden = this.screen || !this.info.video_muted;
    this.sourceBadge.hidden = this.info.source !== 'whip';
    this.root.classList.toggle('video-muted', !this.screen && !!this.info.video_muted);
    this.root.dataset.audioMuted = String(!!this.info.audio_muted);
    this.root.dataset.videoMuted = String(!!this.info.video_muted);
    this.refreshAvatar();
  }

  /** Shows a local stream (own preview). */
  showLocal(stream) {
    for (const t of stream.getVideoTracks()) this.videoStream.addTrack(t);
    play(this.video);
    this.refreshAvatar();
  }

  /** Shows one remote video track; `trackId` is the server's id of it (for preferences). */
  setVideo(track, trackId) {
    this.trackId = trackId;
    this.sent = null;
    this.addTrack(track);
    this.schedulePreference();
  }

  clearVideo() {
    for (const t of this.videoStream.getVideoTracks()) this.videoStream.removeTrack(t);
    this.trackId = null;
    this.refreshAvatar();
  }

  /**
   * The size the video is shown at in device pixels: the element's box, narrowed to the
   * picture's aspect ratio once that is known (the picture is letterboxed inside it).
   */
  shownSize() {
    const box = this.video.getBoundingClientRect();
    let { width, height } = box;
    const vw = this.video.videoWidth;
    const vh = this.video.videoHeight;
    if (vw && vh && width && height) {
      const scale = Math.min(width / vw, height / vh);
      width = vw * scale;
      height = vh * scale;
    }
    const dpr = window.devicePixelRatio || 1;
    return { width: Math.round(width * dpr), height: Math.round(height * dpr) };
  }

  schedulePreference() {
    if (!this.onPreference) return;
    clearTimeout(this.preferenceTimer);
    this.preferenceTimer = setTimeout(() => this.reportPreference(false), this.sent ? SIZE_DEBOUNCE_MS : 0);
  }

  /** Reports size and pin when they changed noticeably (`force`: the pin was changed). */
  reportPreference(force) {
    if (!this.onPreference || !this.trackId) return;
    const { width, height } = this.shownSize();
    if (!width || !height) return; // not laid out
    const pin = (this.pin && this.pin.value) || null;
    const last = this.sent;
    const moved = (now, before) => Math.abs(now - before) > Math.max(16, before * SIZE_CHANGE);
    if (!force && last && last.track === this.trackId && last.pin === pin
      && !moved(width, last.width) && !moved(height, last.height)) return;
    this.sent = { track: this.trackId, width, height, pin };
    this.onPreference({ ...this.sent });
  }

  /** What the server forwards of this tile's video and why (a `quality` message's entry). */
  setLayer(layer) {
    this.layer = layer;
    const paused = !!(layer && layer.paused);
    this.pausedBadge.hidden = !paused;
    this.root.classList.toggle('paused', paused);
    if (layer) this.root.dataset.reason = layer.reason;
    else delete this.root.dataset.reason;
    // Pinning means something only for a track with layers.
    if (this.pin) this.pin.hidden = !(layer && layer.layer) && !this.pin.value;
    this.renderQuality();
  }

  /** `reason`: why this browser cannot receive the tile's audio or video (null: it can). */
  setUnavailable(kind, reason) {
    if (this.unavailable[kind] === reason) return;
    this.unavailable[kind] = reason;
    const lines = [];
    if (this.unavailable.video) lines.push(`Cannot show this video: ${this.unavailable.video}`);
    if (this.unavailable.audio) lines.push(`Cannot play this audio: ${this.unavailable.audio}`);
    this.notice.textContent = lines.join('\n');
    this.notice.hidden = lines.length === 0;
    this.root.classList.toggle('unavailable', !!this.unavailable.video);
    this.refreshAvatar();
  }

  setSpeaking(on) {
    this.root.classList.toggle('speaking', on);
    this.root.dataset.speaking = String(on);
  }

  addTrack(track) {
    const stream = track.kind === 'video' ? this.videoStream : this.audioStream;
    for (const old of stream.getTracks()) {
      if (old.id !== track.id) stream.removeTrack(old);
    }
    if (!stream.getTrackById(track.id)) stream.addTrack(track);
    const media = track.kind === 'video' ? this.video : this.audio;
    // Reassigning srcObject makes every browser pick up the new track.
    media.srcObject = stream;
    play(media);
    track.addEventListener('ended', () => this.removeTrack(track.id));
    this.refreshAvatar();
  }

  removeTrack(trackId) {
    for (const stream of [this.videoStream, this.audioStream]) {
      const t = stream.getTrackById(trackId);
      if (t) stream.removeTrack(t);
    }
    this.refreshAvatar();
  }

  hasVideo() {
    return this.videoStream.getVideoTracks().length > 0;
  }

  refreshAvatar() {
    const showAvatar = !this.hasVideo() || !!this.unavailable.video || (!this.screen && !!(this.info && this.info.video_muted));
    this.root.classList.toggle('no-video', showAvatar);
  }

  setQuality(q) {
    this.stats = q;
    this.renderQuality();
  }

  renderQuality() {
    if (this.local) return;
    const q = this.stats || { video: null, audio: null, rttMs: null };
    const rows = [];
    const v = q.video;
    const a = q.audio;
    const l = this.layer;
    if (v) {
      rows.push(['video', l && l.paused ? 'paused' : `${fmt(v.kbps)} kbit/s`]);
      rows.push(['fps', fmt(v.fps)]);
      rows.push(['size', v.frameWidth ? `${v.frameWidth}×${v.frameHeight}` : '—']);
      rows.push(['lost', `${v.packetsLost ?? 0}`]);
      rows.push(['jitter', `${fmt(v.jitterMs)} ms`]);
    }
    if (l) {
      const size = l.width ? ` ${l.width}×${l.height}` : '';
      rows.push(['layer', `${l.layer || 'single'}${size}`]);
      rows.push(['why', l.text || l.reason]);
    }
    if (a) {
      rows.push(['audio', `${fmt(a.kbps)} kbit/s`]);
      if (!v) rows.push(['lost', `${a.packetsLost ?? 0}`], ['jitter', `${fmt(a.jitterMs)} ms`]);
    }
    rows.push(['rtt', q.rttMs == null ? '—' : `${fmt(q.rttMs)} ms`]);
    this.quality.replaceChildren(
      ...rows.flatMap(([k, val]) => [el('dt', { text: k }), el('dd', { text: val, class: k === 'why' ? 'why' : null })]),
    );
  }

  remove() {
    clearTimeout(this.preferenceTimer);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    for (const stream of [this.videoStream, this.audioStream]) {
      for (const t of stream.getTracks()) stream.removeTrack(t);
    }
    this.video.srcObject = null;
    if (this.audio) this.audio.srcObject = null;
    this.root.remove();
  }
}

function fmt(x) {
  if (x == null || Number.isNaN(x)) return '—';
  return x >= 100 ? String(Math.round(x)) : x.toFixed(1).replace(/\.0$/, '');
}

export const ui = {
  $,
  el,
  show(viewId) {
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== viewId;
  },
  banner(text, kind = 'error') {
    const b = $('#banner');
    if (!b) return;
    b.textContent = text;
    b.className = `banner ${kind}`;
    b.hidden = !text;
    if (kind === 'info' && text) setTimeout(() => { if (b.textContent === text) b.hidden = true; }, 4000);
  },
  setCount(n) {
    const c = $('#count');
    c.textContent = n === 1 ? '1 participant' : `${n} participants`;
    c.dataset.count = String(n);
  },
  setStatus(text) {
    $('#status').textContent = text;
  },
  addChat({ name, text, at, own }) {
    const list = $('#chat-list');
    const time = new Date(at || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const item = el(
      'li',
      { class: own ? 'own' : '' },
      el('span', { class: 'who', text: own ? 'You' : name }),
      el('time', { text: time }),
      el('p', { text }),
    );
    list.append(item);
    list.scrollTop = list.scrollHeight;
  },
};
