// DOM for the call view: tiles, controls, chat, banners. No WebRTC in here.

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
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

/** One participant's tile: video, audio, name, mute badges and the quality panel. */
export class Tile {
  constructor(info, { local = false } = {}) {
    this.id = info.id;
    this.local = local;
    this.video = el('video', { autoplay: true, playsinline: true, muted: true });
    this.video.muted = true; // the property, not only the attribute: autoplay without a gesture
    this.audio = local ? null : el('audio', { autoplay: true });
    this.avatar = el('div', { class: 'avatar' });
    this.nameEl = el('span', { class: 'name' });
    this.micBadge = el('span', { class: 'badge mic', text: 'mic off', hidden: true });
    this.camBadge = el('span', { class: 'badge cam', text: 'camera off', hidden: true });
    this.sourceBadge = el('span', { class: 'badge source', text: 'WHIP', hidden: true });
    this.quality = el('dl', { class: 'quality' });
    this.root = el(
      'div',
      { class: local ? 'tile local' : 'tile', 'data-participant': info.id },
      this.video,
      this.avatar,
      this.audio,
      el('div', { class: 'label' }, this.nameEl, this.sourceBadge, this.micBadge, this.camBadge),
      local ? null : this.quality,
    );
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
    this.nameEl.textContent = name;
    this.avatar.textContent = initials(this.info.name);
    this.micBadge.hidden = !this.info.audio_muted;
    this.camBadge.hidden = !this.info.video_muted;
    this.sourceBadge.hidden = this.info.source !== 'whip';
    this.root.classList.toggle('video-muted', !!this.info.video_muted);
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
    const showAvatar = !this.hasVideo() || !!(this.info && this.info.video_muted);
    this.root.classList.toggle('no-video', showAvatar);
  }

  setQuality(q) {
    const rows = [];
    const v = q.video;
    const a = q.audio;
    if (v) {
      rows.push(['video', `${fmt(v.kbps)} kbit/s`]);
      rows.push(['fps', fmt(v.fps)]);
      rows.push(['size', v.frameWidth ? `${v.frameWidth}×${v.frameHeight}` : '—']);
      rows.push(['lost', `${v.packetsLost ?? 0}`]);
      rows.push(['jitter', `${fmt(v.jitterMs)} ms`]);
    }
    if (a) {
      rows.push(['audio', `${fmt(a.kbps)} kbit/s`]);
      if (!v) rows.push(['lost', `${a.packetsLost ?? 0}`], ['jitter', `${fmt(a.jitterMs)} ms`]);
    }
    rows.push(['rtt', q.rttMs == null ? '—' : `${fmt(q.rttMs)} ms`]);
    this.quality.replaceChildren(
      ...rows.flatMap(([k, val]) => [el('dt', { text: k }), el('dd', { text: val })]),
    );
  }

  remove() {
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
