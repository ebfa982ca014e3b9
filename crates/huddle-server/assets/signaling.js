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
