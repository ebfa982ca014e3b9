// One call: the room WebSocket, one RTCPeerConnection (bundle), tiles per participant,
// chat over the `chat` data channel, and the quality loop.

import { Signaling } from './signaling.js';
import { Tile, ui } from './ui.js';
import { sampleReceiver } from './stats.js';

/** Camera and microphone, or whatever of them is available; an empty stream at worst. */
async function getMedia() {
  const tries = [{ audio: true, video: true }, { audio: true }, { video: true }];
  let lastError = null;
  for (const constraints of tries) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), error: lastError };
    } catch (err) {
      lastError = lastError || err;
    }
  }
  return { stream: new MediaStream(), error: lastError };
}

export class Call {
  constructor({ room, name, token }) {
    this.room = room;
    this.name = name;
    this.token = token;
    this.id = null;
    this.pc = null;
    this.dc = null;
    this.sig = null;
    this.localStream = null;
    this.localTile = null;
    /** @type {Map<string, {tile: Tile, info: object, receivers: Map<string, object>}>} */
    this.participants = new Map();
    this.muted = { audio: false, video: false };
    this.chat = [];
    this.log = [];
    this.errors = [];
    this.state = 'new';
    this.t0 = performance.now();
    this.timings = {};
    this.statsTimer = null;
    this.statsBusy = false;
  }

  note(type, detail) {
    this.log.push({ t: Math.round(performance.now() - this.t0), type, ...(detail || {}) });
    if (this.log.length > 500) this.log.shift();
  }

  fail(reason) {
    this.errors.push(reason);
    this.note('error', { reason });
    ui.banner(reason, 'error');
  }

  async start() {
    this.state = 'media';
    ui.setStatus('Starting camera…');
    const { stream, error } = await getMedia();
    this.localStream = stream;
    if (error) ui.banner(`Camera/microphone: ${error.name || error}. Joining with what is available.`, 'info');
    this.localTile = new Tile({ id: 'local', name: this.name, source: 'browser' }, { local: true });
    this.localTile.showLocal(stream);
    ui.$('#tiles').append(this.localTile.root);
    this.updateCount();
    this.syncControls();

    this.state = 'connecting';
    ui.setStatus('Connecting…');
    this.sig = new Signaling(this.room, {
      token: this.token,
      onMessage: (m) => this.onMessage(m),
      onClose: (ev) => this.onSocketClose(ev),
      onError: (err) => this.fail(`Signaling: ${err && err.message ? err.message : err}`),
    });
    try {
      await this.sig.opened;
    } catch (err) {
      this.fail(err.message);
      this.state = 'failed';
      return;
    }
    this.timings.joinSent = performance.now();
    this.t0 = this.timings.joinSent;
    this.note('join');
    this.sig.send({ type: 'join', name: this.name });
    this.statsTimer = setInterval(() => this.sampleStats(), 1000);
  }

  async onMessage(msg) {
    this.note(`recv:${msg.type}`, msg.type === 'offer' || msg.type === 'answer' ? {} : { msg });
    switch (msg.type) {
      case 'welcome':
        return this.onWelcome(msg);
      case 'answer':
        if (!this.pc) return;
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        this.timings.answered = performance.now();
        return;
      case 'offer':
        return this.onServerOffer(msg.sdp);
      case 'participant-joined':
        this.upsertParticipant(msg.participant);
        return;
      case 'participant-left':
        this.removeParticipant(msg.id);
        return;
      case 'track-published':
        this.upsertParticipant({ id: msg.participant });
        return;
      case 'track-unpublished':
        this.removeTrack(msg.participant, msg.track);
        return;
      case 'mute': {
        const p = this.participants.get(msg.participant);
        if (p) {
          p.info[msg.kind === 'audio' ? 'audio_muted' : 'video_muted'] = !!msg.muted;
          p.tile.update(p.info);
        }
        return;
      }
      case 'error':
        this.fail(`Server: ${msg.reason}`);
        return;
      default:
        console.warn('huddle: unknown message', msg);
    }
  }

  async onWelcome(msg) {
    this.id = msg.id;
    this.timings.welcome = performance.now();
    for (const p of msg.participants || []) this.upsertParticipant(p);
    const pc = new RTCPeerConnection({ iceServers: msg.iceServers || [], bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.addEventListener('icecandidate', (ev) => {
      const c = ev.candidate;
      this.sig.send(
        c && c.candidate
          ? { type: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid }
          : { type: 'candidate', candidate: null },
      );
    });
    pc.addEventListener('track', (ev) => this.onTrack(ev));
    pc.addEventListener('connectionstatechange', () => {
      this.note('pc', { state: pc.connectionState });
      if (pc.connectionState === 'connected') {
        this.timings.connected = this.timings.connected || performance.now();
        this.state = 'connected';
        ui.setStatus('Connected');
      } else if (pc.connectionState === 'failed') {
        this.state = 'failed';
        this.fail('Media connection failed');
      } else if (pc.connectionState !== 'closed') {
        ui.setStatus(pc.connectionState[0].toUpperCase() + pc.connectionState.slice(1) + '…');
      }
    });
    for (const track of this.localStream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
      track.enabled = !this.muted[track.kind];
    }
    this.dc = pc.createDataChannel('chat');
    this.dc.addEventListener('open', () => {
      this.note('chat-open');
      ui.$('#chat-input').disabled = false;
    });
    this.dc.addEventListener('close', () => this.note('chat-close'));
    this.dc.addEventListener('message', (ev) => this.onChat(ev.data));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.sig.send({ type: 'offer', sdp: pc.localDescription.sdp });
    // Tell the room about mutes chosen before joining.
    for (const kind of ['audio', 'video']) {
      if (this.muted[kind]) this.sig.send({ type: 'mute', kind, muted: true });
    }
  }

  async onServerOffer(sdp) {
    const pc = this.pc;
    if (!pc || pc.signalingState === 'closed') return;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
    this.pruneInactive();
  }

  /** Drops tracks whose m-line the server made inactive (works whatever the browser calls the track). */
  pruneInactive() {
    for (const tr of this.pc.getTransceivers()) {
      const receiving = tr.currentDirection === 'recvonly' || tr.currentDirection === 'sendrecv';
      if (receiving || !tr.receiver || !tr.receiver.track) continue;
      const id = tr.receiver.track.id;
      for (const p of this.participants.values()) {
        if (p.receivers.has(id)) {
          p.receivers.delete(id);
          p.tile.removeTrack(id);
        }
      }
    }
  }

  onTrack(ev) {
    const stream = ev.streams && ev.streams[0];
    const pid = stream ? stream.id : 'unknown';
    const track = ev.track;
    const at = performance.now();
    this.note('track', { participant: pid, kind: track.kind, track: track.id });
    const p = this.upsertParticipant({ id: pid });
    // A re-used m-line may move a receiver between participants.
    for (const other of this.participants.values()) {
      if (other !== p && other.receivers.delete(track.id)) other.tile.removeTrack(track.id);
    }
    const entry = { receiver: ev.receiver, kind: track.kind, trackAt: at, prev: null, last: null, firstDecodedAt: null };
    p.receivers.set(track.id, entry);
    p.tile.addTrack(track);
    if (stream) {
      stream.addEventListener('removetrack', (e) => {
        if (p.receivers.get(e.track.id) === entry) {
          p.receivers.delete(e.track.id);
          p.tile.removeTrack(e.track.id);
        }
      });
    }
    if (track.kind === 'video') {
      p.videoTrackAt = p.videoTrackAt || at;
      this.watchFirstFrame(p, entry);
    }
  }

  /** Polls a new video receiver quickly until it decodes its first frame. */
  async watchFirstFrame(p, entry) {
    const deadline = performance.now() + 30000;
    while (performance.now() < deadline && this.state !== 'left') {
      if (p.receivers.get(entry.receiver.track.id) !== entry) return;
      try {
        const s = await sampleReceiver(entry.receiver, null);
        if (s.framesDecoded > 0) {
          entry.firstDecodedAt = performance.now();
          if (!p.firstDecodedAt) p.firstDecodedAt = entry.firstDecodedAt;
          this.note('first-frame', {
            participant: p.info.id,
            sinceTrackMs: Math.round(entry.firstDecodedAt - entry.trackAt),
          });
          return;
        }
      } catch {
        // receiver gone
        return;
      }
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  upsertParticipant(info) {
    let p = this.participants.get(info.id);
    if (p) {
      const merged = { ...p.info };
      for (const [k, v] of Object.entries(info)) if (v !== undefined) merged[k] = v;
      p.info = merged;
      p.tile.update(p.info);
      return p;
    }
    const full = { name: info.id, source: 'browser', audio_muted: false, video_muted: false, ...info };
    const tile = new Tile(full);
    ui.$('#tiles').append(tile.root);
    p = { info: full, tile, receivers: new Map(), joinedAt: performance.now(), videoTrackAt: null, firstDecodedAt: null };
    this.participants.set(info.id, p);
    this.updateCount();
    return p;
  }

  removeParticipant(id) {
    const p = this.participants.get(id);
    if (!p) return;
    this.participants.delete(id);
    p.receivers.clear();
    p.tile.remove();
    this.updateCount();
  }

  removeTrack(pid, trackId) {
    const p = this.participants.get(pid);
    if (!p) return;
    // Chromium keeps the msid track id; Firefox names tracks itself (pruneInactive covers it).
    if (p.receivers.delete(trackId)) p.tile.removeTrack(trackId);
  }

  updateCount() {
    ui.setCount(1 + this.participants.size);
  }

  onChat(data) {
    let m;
    try {
      m = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      return;
    }
    if (!m || typeof m.text !== 'string') return;
    const entry = { from: m.from, name: m.name || m.from, text: m.text, at: m.at || Date.now(), own: false };
    this.chat.push(entry);
    ui.addChat(entry);
  }

  sendChat(text) {
    text = String(text).trim();
    if (!text) return false;
    if (!this.dc || this.dc.readyState !== 'open') {
      ui.banner('Chat is not connected yet', 'info');
      return false;
    }
    this.dc.send(JSON.stringify({ text }));
    const entry = { from: this.id, name: this.name, text, at: Date.now(), own: true };
    this.chat.push(entry);
    ui.addChat(entry);
    return true;
  }

  setMuted(kind, muted) {
    this.muted[kind] = muted;
    for (const t of this.localStream ? this.localStream.getTracks() : []) {
      if (t.kind === kind) t.enabled = !muted;
    }
    if (this.sig && this.id) this.sig.send({ type: 'mute', kind, muted });
    this.localTile.update({ [kind === 'audio' ? 'audio_muted' : 'video_muted']: muted });
    this.syncControls();
  }

  syncControls() {
    const mic = ui.$('#mute-audio');
    const cam = ui.$('#mute-video');
    mic.setAttribute('aria-pressed', String(this.muted.audio));
    mic.textContent = this.muted.audio ? 'Unmute mic' : 'Mute mic';
    cam.setAttribute('aria-pressed', String(this.muted.video));
    cam.textContent = this.muted.video ? 'Start camera' : 'Stop camera';
  }

  leave() {
    if (this.state === 'left') return;
    this.state = 'left';
    if (this.sig) {
      this.sig.send({ type: 'leave' });
      this.sig.close();
    }
    this.shutdown();
    ui.setStatus('You left the call');
  }

  shutdown() {
    clearInterval(this.statsTimer);
    if (this.pc) this.pc.close();
    for (const t of this.localStream ? this.localStream.getTracks() : []) t.stop();
    for (const id of [...this.participants.keys()]) this.removeParticipant(id);
    if (this.localTile) this.localTile.remove();
  }

  onSocketClose(ev) {
    this.note('socket-close', { code: ev.code });
    if (this.state === 'left') return;
    this.state = 'disconnected';
    this.fail(`Disconnected from the server${ev.reason ? `: ${ev.reason}` : ''}`);
    this.shutdown();
    ui.setStatus('Disconnected');
  }

  async sampleStats() {
    if (this.statsBusy || !this.pc) return;
    this.statsBusy = true;
    try {
      for (const p of this.participants.values()) {
        const q = { video: null, audio: null, rttMs: null };
        for (const entry of p.receivers.values()) {
          try {
            const s = await sampleReceiver(entry.receiver, entry.prev);
            entry.prev = s;
            entry.last = s;
            if (s.kind === 'video' && (!q.video || s.bytesReceived > q.video.bytesReceived)) q.video = s;
            if (s.kind === 'audio' && (!q.audio || s.bytesReceived > q.audio.bytesReceived)) q.audio = s;
            if (s.rttMs != null) q.rttMs = s.rttMs;
          } catch {
            // the receiver went away between two samples
          }
        }
        p.quality = q;
        p.tile.setQuality(q);
      }
    } finally {
      this.statsBusy = false;
    }
  }

  /** Plain data about every remote tile, for tests and debugging. */
  tiles() {
    return [...this.participants.values()].map((p) => {
      const q = p.quality || {};
      const v = q.video || {};
      const a = q.audio || {};
      const since = (t) => (t == null ? null : Math.round(t - this.t0));
      return {
        participant: p.info.id,
        name: p.info.name,
        source: p.info.source,
        audioMuted: !!p.info.audio_muted,
        videoMuted: !!p.info.video_muted,
        videoTracks: p.tile.videoStream.getVideoTracks().length,
        audioTracks: p.tile.audioStream.getAudioTracks().length,
        framesDecoded: v.framesDecoded || 0,
        frameWidth: v.frameWidth || 0,
        frameHeight: v.frameHeight || 0,
        fps: v.fps ?? null,
        videoKbps: v.kbps ?? null,
        packetsLost: (v.packetsLost || 0) + (a.packetsLost || 0),
        jitterMs: v.jitterMs ?? a.jitterMs ?? null,
        rttMs: q.rttMs ?? null,
        audioPackets: a.packetsReceived || 0,
        audioKbps: a.kbps ?? null,
        // ms since this page sent `join`
        videoTrackAt: since(p.videoTrackAt),
        firstDecodedAt: since(p.firstDecodedAt),
        // first video track's ontrack → first decoded frame
        trackToFrameMs: p.firstDecodedAt && p.videoTrackAt ? Math.round(p.firstDecodedAt - p.videoTrackAt) : null,
      };
    });
  }
}
