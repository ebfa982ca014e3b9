// Receive quality from RTCRtpReceiver.getStats() (bitrate, fps, resolution, loss, jitter,
// round-trip time; standard stats only, so Chromium and Firefox agree), sampled for every
// tile of a call, and the plain description of the tiles that tests and debugging read.

/** The selected candidate pair's RTT in ms, if the report has one. */
function rttFrom(report) {
  let pairId = null;
  let rtt = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  report.forEach((s) => {
    if (s.type !== 'candidate-pair') return;
    const selected = pairId ? s.id === pairId : s.selected || (s.nominated && s.state === 'succeeded');
    if (selected && typeof s.currentRoundTripTime === 'number') rtt = s.currentRoundTripTime * 1000;
    else if (selected && rtt == null && s.totalRoundTripTime && s.responsesReceived) {
      rtt = (s.totalRoundTripTime / s.responsesReceived) * 1000;
    }
  });
  return rtt;
}

/**
 * Samples one receiver. `prev` is the previous sample for it (or undefined); returns the
 * new sample, which carries what the next call needs for rates.
 */
function fresher(a, b) {
  const last = (s) => s.lastPacketReceivedTimestamp || 0;
  return last(a) !== last(b) ? last(a) > last(b) : (a.bytesReceived || 0) > (b.bytesReceived || 0);
}

export async function sampleReceiver(receiver, prev) {
  const report = await receiver.getStats();
  let inbound = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && !s.isRemote) {
      // A re-used receiver keeps reporting the stream of its previous track: keep the one
      // that received last (then the one with the most bytes).
      if (!inbound || fresher(s, inbound)) inbound = s;
    }
  });
  const now = inbound ? inbound.timestamp : performance.now();
  const sample = {
    kind: receiver.track ? receiver.track.kind : inbound && inbound.kind,
    timestamp: now,
    ssrc: inbound ? inbound.ssrc : null,
    bytesReceived: inbound ? inbound.bytesReceived || 0 : 0,
    packetsReceived: inbound ? inbound.packetsReceived || 0 : 0,
    packetsLost: inbound ? inbound.packetsLost || 0 : 0,
    jitterMs: inbound && typeof inbound.jitter === 'number' ? inbound.jitter * 1000 : null,
    framesDecoded: inbound ? inbound.framesDecoded || 0 : 0,
    frameWidth: inbound ? inbound.frameWidth || 0 : 0,
    frameHeight: inbound ? inbound.frameHeight || 0 : 0,
    fps: null,
    kbps: null,
    rttMs: rttFrom(report),
  };
  // Rates over at least ~1 s, whoever asks for samples in between (tests call in often).
  const base = prev && prev.rateBase;
  if (base && now - base.timestamp >= 900) {
    const dtMs = now - base.timestamp;
    sample.kbps = ((sample.bytesReceived - base.bytesReceived) * 8) / dtMs;
    if (sample.kind === 'video') {
      sample.fps = inbound && typeof inbound.framesPerSecond === 'number'
        ? inbound.framesPerSecond
        : ((sample.framesDecoded - base.framesDecoded) * 1000) / dtMs;
    }
    sample.rateBase = { timestamp: now, bytesReceived: sample.bytesReceived, framesDecoded: sample.framesDecoded };
  } else if (base) {
    sample.kbps = prev.kbps;
    sample.fps = prev.fps;
    sample.rateBase = base;
  } else {
    sample.rateBase = { timestamp: now, bytesReceived: sample.bytesReceived, framesDecoded: sample.framesDecoded };
  }
  return sample;
}

/**
 * Samples every receiver of the call once (one call at a time) and shows the figures on the
 * tiles.
 */
export async function sampleCall(call) {
  if (call.statsBusy || !call.pc) return;
  call.statsBusy = true;
  try {
    for (const p of call.participants.values()) {
      const q = { video: null, audio: null, rttMs: null };
      for (const entry of p.receivers.values()) {
        try {
          const s = await sampleReceiver(entry.receiver, entry.prev);
          entry.prev = s;
          entry.last = s;
          if (s.kind === 'audio' && (!q.audio || s.bytesReceived > q.audio.bytesReceived)) q.audio = s;
          if (s.rttMs != null) q.rttMs = s.rttMs;
        } catch {
          // the receiver went away between two samples
        }
      }
      q.video = p.main ? p.main.last : null;
      p.quality = q;
      p.tile.setQuality(q);
      for (const e of p.receivers.values()) {
        if (e.kind === 'video' && e.tile && e.tile !== p.tile) e.tile.setQuality({ video: e.last, audio: null, rttMs: q.rttMs });
      }
    }
  } finally {
    call.statsBusy = false;
  }
}

/** Server track ids are `t<number>`, handed out in publishing order: a camera before a screen. */
export function trackOrder(entry) {
  const n = /^t(\d+)$/.exec(entry.serverId || '');
  return n ? Number(n[1]) : Number.MAX_SAFE_INTEGER;
}

/** Plain data about every remote tile of the call, for tests and debugging. */
export function describeTiles(call) {
  return [...call.participants.values()].map((p) => {
    const q = p.quality || {};
    const v = q.video || {};
    const a = q.audio || {};
    const since = (t) => (t == null ? null : Math.round(t - call.t0));
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
      speaking: !!call.speaker && call.speaker === p.info.id,
      // every video track, camera first; layer and reason as the server last said
      videos: [...p.receivers.values()].filter((e) => e.kind === 'video').sort((a, b) => trackOrder(a) - trackOrder(b)).map((e) => {
        const s = e.last || {};
        const l = call.quality.tracks.get(e.serverId) || {};
        return {
          track: e.serverId,
          screen: !!e.tile && e.tile !== p.tile,
          framesDecoded: s.framesDecoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          fps: s.fps ?? null,
          firstDecodedAt: since(e.firstDecodedAt),
          layer: l.layer ?? null,
          reason: l.reason ?? null,
          paused: !!l.paused,
          unavailable: (call.unavailable.get(e.serverId) || {}).reason || null,
        };
      }),
    };
  });
}
