// socket-tab.mjs: one browser tab of v0.17, or of the reference server's clients.
//
// It opens a Socket.IO connection to the server with its API token, as v0.17's
// app.js does, and waits for pushes; every heartbeat interval it says it is still
// there. It connects with the websocket transport straight away, where a browser
// first opens an HTTP long-polling connection and then upgrades it: what follows
// the upgrade is the same. It does not reconnect: a connection that drops counts.

import { io } from "socket.io-client";

export class SocketTab {
  /** A tab of client number index, logged in with token (the reference server ignores it).
   *
   * compress: offer the server to compress messages (permessage-deflate), as browsers do.
   */
  constructor({ index, baseUrl, token, compress, arrivals, counters }) {
    Object.assign(this, { index, baseUrl, token, compress, arrivals, counters });
    this.socket = null;
    this.timers = [];
    this.closing = false;
  }

  /** Connect; resolve once connected, reject if refused or not connected within timeoutMs. */
  connect(timeoutMs) {
    this.socket = io(this.baseUrl, {
      auth: { token: this.token },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true, // a connection of its own, as each tab has
      timeout: timeoutMs,
      // socket.io-client's own default offers compression for messages of 1 KiB and more.
      perMessageDeflate: this.compress ? { threshold: 1024 } : false,
    });
    this.socket.on("message_changed", (message) => this.arrivals.record(this.index, message.id));
    this.socket.onAny((event) => {
      this.counters.events[event] = (this.counters.events[event] || 0) + 1;
    });
    this.socket.on("disconnect", () => {
      if (!this.closing) this.counters.disconnects += 1;
    });
    return new Promise((resolve, reject) => {
      this.socket.once("connect", resolve);
      this.socket.once("connect_error", reject);
    });
  }

  /** Return the WebSocket extensions the server agreed to, such as permessage-deflate. */
  extensions() {
    return this.socket?.io.engine.transport.ws?.extensions ?? null;
  }

  /** Emit still_here every everyMs, the first after delayMs, as app.js does on a timer. */
  startHeartbeat(delayMs, everyMs) {
    const beat = () => {
      this.socket.emit("still_here");
      this.counters.heartbeats += 1;
    };
    this.timers.push(setTimeout(() => {
      beat();
      this.timers.push(setInterval(beat, everyMs));
    }, delayMs));
  }

  /** Stop the heartbeat and close the connection. */
  stop() {
    this.closing = true;
    for (const timer of this.timers) clearTimeout(timer); // clears intervals too
    this.socket?.close();
  }
}
