// The room WebSocket: JSON messages in both directions (see signaling/messages.rs).
// Incoming messages are handed to one async handler at a time, in order, so a server
// offer is fully answered before the next message is looked at.

export class Signaling {
  /**
   * @param {string} room
   * @param {{token?: string|null, onMessage: (msg: object) => Promise<void>|void,
   *          onClose: (ev: CloseEvent) => void, onError?: (err: unknown) => void}} opts
   */
  constructor(room, opts) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${scheme}//${location.host}/rooms/${encodeURIComponent(room)}/ws`;
    if (opts.token) url += `?token=${encodeURIComponent(opts.token)}`;
    this.url = url;
    this.opts = opts;
    this.queue = Promise.resolve();
    this.closed = false;
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener('open', () => resolve(), { once: true });
      this.ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    this.ws.addEventListener('message', (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('huddle: non-JSON message from server', ev.data);
        return;
      }
      this.queue = this.queue
        .then(() => opts.onMessage(msg))
        .catch((err) => (opts.onError ? opts.onError(err) : console.error(err)));
    });
    this.ws.addEventListener('close', (ev) => {
      this.closed = true;
      opts.onClose(ev);
    });
  }

  send(msg) {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  close() {
    this.closed = true;
    try {
      this.ws.close(1000, 'leave');
    } catch {
      // already closed
    }
  }
}

/**
 * The media sections of an SDP, in order: kind, mid, direction and `msid` (stream id, the
 * publisher's participant id in server offers, and track id, the server's track id).
 */
export function sections(sdp) {
  const out = [];
  let cur = null;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      cur = { kind: line.slice(2).split(' ')[0], mid: null, direction: 'sendrecv', stream: null, track: null };
      out.push(cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith('a=mid:')) {
      cur.mid = line.slice(6);
    } else if (line.startsWith('a=msid:')) {
      const [stream, track] = line.slice(7).split(' ');
      cur.stream = stream || null;
      cur.track = track || null;
    } else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      cur.direction = line.slice(2);
    }
  }
  return out;
}
