// One call: the room WebSocket, one RTCPeerConnection (bundle), tiles per participant (and
// one more per extra video track, a screen share), chat over the `chat` data channel, the
// quality loop, and what the server says about it: layers, the active speaker, tracks this
// browser cannot decode.

import { Signaling, sections } from './signaling.js';
import { Tile, ui } from './ui.js';
import { describeTiles, sampleCall, sampleReceiver, trackOrder } from './stats.js';

/** The camera goes out as three simulcast layers (RFC 8853 rids), lowest first. */
export const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

/**
 * The camera at 960x540 if it can: big enough for three simulcast layers (Chromium sends only
 * two of a 640x480 picture), small enough to encode three times on a modest machine.
 */
const CAMERA = { width: { ideal: 960 }, height: { ideal: 540 } };

/** Camera and microphone, or whatever of them is available; an empty stream at worst. */
async function getMedia() {
  const tries = [{ audio: true, video: CAMERA }, { audio: true }, { video: CAMERA }];
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
    /** @type {Map<string, {tile: Tile, screens: Map<string, Tile>, info: object, receivers: Map<string, object>}>} */
    this.participants = new Map();
    /** What the server's offers say of each mid (kind, msid stream and track ids). */
    this.sectionByMid = new Map();
    this.negotiating = false;
    /** Tile sizes and pins waiting for the answer that creates their subscriptions. */
    this.pendingPreferences = new Map();
    /** The last `quality` message: server track id → layer, size, reason. */
    this.quality = { estimate: null, tracks: new Map() };
    /** `track-unavailable` messages by server track id. */
    this.unavailable = new Map();
    this.speaker = null;
    /** This page's screen share: {stream, track, transceiver, mid, trackId, tile}. */
    this.screen = null;
    /** This page's own tracks, when the server names them (`track-published` for itself). */
    this.ownTracks = [];
    this.muted = { audio: false, video: false };
    this.chat = [];
    this.log = [];
    this.errors = [];
    this.state = 'new';
    this.t0 = performance.now();
    this.timings = {};
    // Receivers of every m-line so far (a re-used one first reports its previous stream).
    this.seenReceivers = new WeakSet();
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
        if (msg.participant === this.id) return this.onOwnTrack(msg);
        this.upsertParticipant({ id: msg.participant });
        return;
      case 'track-unpublished':
        this.removeTrack(msg.participant, msg.track);
        return;
      case 'quality':
        this.quality = { estimate: msg.estimate ?? null, tracks: new Map((msg.tracks || []).map((t) => [t.track, t])) };
        for (const p of this.participants.values()) this.showServerState(p);
        return;
      case 'speaker':
        this.speaker = msg.participant || null;
        this.showSpeaker();
        return;
      case 'track-unavailable': {
        this.unavailable.set(msg.track, msg);
        const p = this.participants.get(msg.participant) || this.upsertParticipant({ id: msg.participant });
        this.showServerState(p);
        return;
      }
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
      case 'diagnosis':
        return this.showDiagnosis(msg.diagnosis);
      case 'bye':
        return this.onBye(msg.reason);
      default:
        console.warn('huddle: unknown message', msg);
    }
  }

  /** The server's view of this page's connection, in words, when it failed. */
  showDiagnosis(d) {
    this.diagnosis = d;
    this.note('diagnosis', { state: d && d.state, reason: d && d.reason });
    if (!d || d.state === 'connected') return;
    const pair = d.pair ? ` Media went ${d.pair.relay ? 'through a TURN relay' : 'directly'} to ${d.pair.remote}.` : '';
    const offered = (d.remote_candidates || []).map((c) => c.type).join(', ') || 'none';
    const text = `Media connection failed: ${d.text} (your browser offered: ${offered}; `
      + `STUN checks received by the server: ${d.stun ? d.stun.received : 0}).${pair}`;
    this.errors.push(text);
    ui.banner(text, 'error');
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
        // Ask the server why (it also says so unasked when it gives up on the connection).
        if (this.sig) this.sig.send({ type: 'diagnosis' });
      } else if (pc.connectionState !== 'closed') {
        ui.setStatus(pc.connectionState[0].toUpperCase() + pc.connectionState.slice(1) + '…');
      }
    });
    for (const track of this.localStream.getTracks()) {
      const init = { direction: 'sendonly', streams: [this.localStream] };
      if (track.kind === 'video') init.sendEncodings = SIMULCAST.map((l) => ({ ...l }));
      pc.addTransceiver(track, init);
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
    const offered = sections(sdp);
    for (const s of offered) if (s.mid != null) this.sectionByMid.set(s.mid, s);
    const known = new Set(pc.getTransceivers().map((t) => t.mid).filter((m) => m != null));
    this.negotiating = true;
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      // A new section the server receives on: the one it offered for the screen we asked to send.
      for (const s of offered.filter((x) => x.direction === 'recvonly' && !known.has(x.mid))) {
        await this.sendScreenOn(pc.getTransceivers().find((t) => t.mid === s.mid), s);
      }
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
    } finally {
      this.negotiating = false;
    }
    for (const pref of this.pendingPreferences.values()) this.sig.send({ type: 'preference', ...pref });
    this.pendingPreferences.clear();
    this.pruneInactive();
  }

  // --- screen share -----------------------------------------------------------------------

  async startShare() {
    if ((this.screen && this.screen.track) || this.choosingScreen) return;
    if (!this.pc || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) return;
    let stream;
    this.choosingScreen = true;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      if (err && err.name !== 'NotAllowedError') ui.banner(`Screen share: ${err.message || err.name}`, 'info');
      return;
    } finally {
      this.choosingScreen = false;
    }
    if (this.state === 'left' || this.state === 'disconnected') {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    if ('contentHint' in track) track.contentHint = 'detail';
    // The browser's own "Stop sharing" ends the track.
    track.addEventListener('ended', () => this.stopShare());
    const tile = new Tile({ id: 'local', name: this.name, source: 'browser' }, { local: true, screen: true });
    tile.showLocal(stream);
    this.localTile.root.after(tile.root);
    const idle = this.screen;
    if (idle && idle.transceiver) {
      // A section of an earlier share whose track id the server never told us: still ours, reuse it.
      await idle.transceiver.sender.replaceTrack(track);
      Object.assign(idle, { stream, track, tile });
    } else {
      this.screen = { stream, track, tile, transceiver: null, mid: null, trackId: null };
      this.timings.sharePublished = performance.now();
      this.note('publish', { kind: 'video' });
      this.sig.send({ type: 'publish', kind: 'video' });
    }
    this.syncControls();
  }

  /** Answers the server's offer of a section to send on: the screen goes out on it. */
  async sendScreenOn(transceiver, section) {
    const s = this.screen;
    if (!transceiver || section.kind !== 'video' || !s || s.transceiver) return;
    if (!s.track) {
      // Stopped before the server's offer came: answer the section inactive.
      this.screen = null;
      return;
    }
    await transceiver.sender.replaceTrack(s.track);
    transceiver.direction = 'sendonly';
    s.transceiver = transceiver;
    s.mid = transceiver.mid;
    this.note('screen-section', { mid: s.mid });
  }

  async stopShare() {
    const s = this.screen;
    if (!s || !s.track) return;
    const { track, tile } = s;
    Object.assign(s, { track: null, stream: null, tile: null });
    track.stop();
    if (tile) tile.remove();
    if (s.transceiver) await s.transceiver.sender.replaceTrack(null).catch(() => {});
    if (s.trackId) {
      this.sig.send({ type: 'unpublish', track: s.trackId });
      this.screen = null;
    }
    // Without its track id the section stays, silent, until the next share reuses it.
    this.syncControls();
  }

  /** The server names one of this page's own tracks (its screen share, once answered). */
  onOwnTrack(msg) {
    this.ownTracks.push({ track: msg.track, kind: msg.kind, mid: msg.mid ?? null });
    const s = this.screen;
    if (!s || !s.transceiver || s.trackId || msg.kind !== 'video') return;
    if (msg.mid != null && msg.mid !== s.mid) return;
    s.trackId = msg.track;
    if (!s.track) {
      this.sig.send({ type: 'unpublish', track: s.trackId });
      this.screen = null;
    }
  }

  /** Drops tracks whose m-line the server made inactive (works whatever the browser calls the track). */
  pruneInactive() {
    for (const tr of this.pc.getTransceivers()) {
      const receiving = tr.currentDirection === 'recvonly' || tr.currentDirection === 'sendrecv';
      if (receiving || !tr.receiver || !tr.receiver.track) continue;
      const id = tr.receiver.track.id;
      for (const p of this.participants.values()) this.dropReceiver(p, id);
    }
  }

  onTrack(ev) {
    const stream = ev.streams && ev.streams[0];
    const track = ev.track;
    const mid = ev.transceiver ? ev.transceiver.mid : null;
    const section = mid != null ? this.sectionByMid.get(mid) : null;
    const pid = stream ? stream.id : (section && section.stream) || 'unknown';
    // Chromium names the track by its msid track id, Firefox by itself: the offer says.
    const serverId = (section && section.track) || track.id;
    const at = performance.now();
    this.note('track', { participant: pid, kind: track.kind, track: serverId, mid });
    const p = this.upsertParticipant({ id: pid });
    // A re-used m-line may move a receiver between participants.
    for (const other of this.participants.values()) if (other !== p) this.dropReceiver(other, track.id);
    const entry = {
      receiver: ev.receiver, track, kind: track.kind, serverId, mid, trackAt: at, prev: null, last: null, firstDecodedAt: null, tile: null,
    };
    p.receivers.set(track.id, entry);
    if (track.kind === 'video') this.placeVideos(p);
    else p.tile.addTrack(track);
    this.showServerState(p);
    const drop = () => {
      if (p.receivers.get(track.id) === entry) this.dropReceiver(p, track.id);
    };
    track.addEventListener('ended', drop);
    if (stream) stream.addEventListener('removetrack', (e) => e.track === track && drop());
    if (track.kind === 'video') {
      p.videoTrackAt = p.videoTrackAt || at;
      this.watchFirstFrame(p, entry);
    }
  }

  /**
   * Polls a new video receiver quickly until it decodes its first frame. A re-used m-line's
   * receiver first reports its previous stream: what counts is a frame of another stream, or
   * a count that moves on from the one seen at the start.
   */
  async watchFirstFrame(p, entry) {
    const deadline = performance.now() + 30000;
    // A receiver seen for the first time has no earlier stream to discount.
    let start = this.seenReceivers.has(entry.receiver) ? null : { ssrc: null, frames: 0 };
    this.seenReceivers.add(entry.receiver);
    while (performance.now() < deadline && this.state !== 'left') {
      if (p.receivers.get(entry.receiver.track.id) !== entry) return;
      try {
        const s = await sampleReceiver(entry.receiver, null);
        start = start || { ssrc: s.ssrc, frames: s.framesDecoded };
        const fresh = s.ssrc !== start.ssrc ? s.framesDecoded > 0 : s.framesDecoded > start.frames;
        if (fresh) {
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
      for (const t of p.screens.values()) t.update(p.info);
      return p;
    }
    const full = { name: info.id, source: 'browser', audio_muted: false, video_muted: false, ...info };
    const tile = new Tile(full, { onPreference: (pref) => this.sendPreference(pref) });
    ui.$('#tiles').append(tile.root);
    p = {
      info: full, tile, screens: new Map(), main: null, receivers: new Map(), joinedAt: performance.now(), videoTrackAt: null, firstDecodedAt: null,
    };
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
    for (const t of p.screens.values()) t.remove();
    p.screens.clear();
    this.updateCount();
  }

  removeTrack(pid, serverId) {
    const p = this.participants.get(pid);
    if (!p) return;
    for (const [id, e] of p.receivers) if (e.serverId === serverId) this.dropReceiver(p, id);
    this.unavailable.delete(serverId);
  }

  /** Forgets one receiver (by the browser's track id) and takes it off its tile. */
  dropReceiver(p, trackId) {
    const entry = p.receivers.get(trackId);
    if (!entry) return;
    p.receivers.delete(trackId);
    if (entry.kind === 'video') this.placeVideos(p);
    else p.tile.removeTrack(trackId);
  }

  /**
   * Puts a participant's video tracks on tiles: the first published (its camera) on its own
   * tile, each later one (a screen share) on a tile of its own.
   */
  placeVideos(p) {
    const videos = [...p.receivers.values()].filter((e) => e.kind === 'video');
    videos.sort((a, b) => trackOrder(a) - trackOrder(b) || a.trackAt - b.trackAt);
    const [main, ...rest] = videos;
    if (main !== p.main) {
      if (main) p.tile.setVideo(main.track, main.serverId);
      else p.tile.clearVideo();
      p.main = main || null;
    }
    if (main) main.tile = p.tile;
    const wanted = new Set(rest.map((e) => e.serverId));
    for (const [id, tile] of p.screens) {
      if (!wanted.has(id)) {
        tile.remove();
        p.screens.delete(id);
      }
    }
    let after = p.tile.root;
    for (const e of rest) {
      let tile = p.screens.get(e.serverId);
      if (!tile) {
        tile = new Tile(p.info, { screen: true, onPreference: (pref) => this.sendPreference(pref) });
        tile.setVideo(e.track, e.serverId);
        p.screens.set(e.serverId, tile);
      }
      after.after(tile.root);
      after = tile.root;
      e.tile = tile;
    }
  }

  /** Shows what the server said of a participant's tracks: layers and reasons, unavailable tracks. */
  showServerState(p) {
    const unavailable = { audio: null };
    for (const e of p.receivers.values()) {
      const gone = this.unavailable.get(e.serverId);
      if (e.kind === 'video' && e.tile) {
        e.tile.setLayer(this.quality.tracks.get(e.serverId) || null);
        e.tile.setUnavailable('video', gone ? gone.reason : null);
      } else if (e.kind === 'audio' && gone) {
        unavailable.audio = gone.reason;
      }
    }
    // A track it has no receiver for (yet): say so on the participant's tile.
    for (const u of this.unavailable.values()) {
      if (u.participant !== p.info.id || [...p.receivers.values()].some((e) => e.serverId === u.track)) continue;
      const section = [...this.sectionByMid.values()].find((s) => s.track === u.track);
      if (section && section.kind === 'audio') unavailable.audio = u.reason;
      else if (!p.main) p.tile.setUnavailable('video', u.reason);
    }
    p.tile.setUnavailable('audio', unavailable.audio);
  }

  showSpeaker() {
    for (const p of this.participants.values()) p.tile.setSpeaking(p.info.id === this.speaker);
    if (this.localTile) this.localTile.setSpeaking(!!this.speaker && this.speaker === this.id);
  }

  /** A tile's size or pin changed: tell the server (after the answer that subscribes to it). */
  sendPreference(pref) {
    this.note('preference', pref);
    if (this.negotiating) this.pendingPreferences.set(pref.track, pref);
    else this.sig.send({ type: 'preference', ...pref });
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
    const share = ui.$('#share');
    const sharing = !!(this.screen && this.screen.track);
    share.disabled = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    share.setAttribute('aria-pressed', String(sharing));
    share.textContent = sharing ? 'Stop sharing' : 'Share screen';
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
    if (this.screen && this.screen.track) this.screen.track.stop();
    if (this.screen && this.screen.tile) this.screen.tile.remove();
    this.screen = null;
    for (const id of [...this.participants.keys()]) this.removeParticipant(id);
    if (this.localTile) this.localTile.remove();
  }

  /** The server ends the call (it is shutting down): say why, and hang up. */
  onBye(reason) {
    if (this.state === 'left') return;
    this.state = 'ended';
    ui.banner(`The call ended: ${reason || 'the server closed it'}`, 'info');
    if (this.sig) this.sig.close();
    this.shutdown();
    ui.setStatus('Call ended');
  }

  onSocketClose(ev) {
    this.note('socket-close', { code: ev.code });
    if (this.state === 'left' || this.state === 'ended') return;
    this.state = 'disconnected';
    const why = this.diagnosis && this.diagnosis.state === 'failed' ? ` (${this.diagnosis.text})` : '';
    this.fail(`Disconnected from the server${ev.reason ? `: ${ev.reason}` : ''}${why}`);
    this.shutdown();
    ui.setStatus('Disconnected');
  }

  sampleStats() {
    return sampleCall(this);
  }

  /** Plain data about every remote tile, for tests and debugging. */
  tiles() {
    return describeTiles(this);
  }
}
