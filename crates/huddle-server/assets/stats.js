// Per-tile receive quality from RTCRtpReceiver.getStats(): bitrate, fps, resolution,
// loss, jitter, round-trip time. Standard stats only, so Chromium and Firefox agree.

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
export async function sampleReceiver(receiver, prev) {
  const report = await receiver.getStats();
  let inbound = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && !s.isRemote) {
      // One per receiver; keep the one with the most bytes if a browser reports more.
      if (!inbound || (s.bytesReceived || 0) > (inbound.bytesReceived || 0)) inbound = s;
    }
  });
  const now = inbound ? inbound.timestamp : performance.now();
  const sample = {
    kind: receiver.track ? receiver.track.kind : inbound && inbound.kind,
    timestamp: now,
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
