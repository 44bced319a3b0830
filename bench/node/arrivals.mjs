// arrivals.mjs: when each client first had each message, on this process's one clock.

/** Milliseconds on the clock that every time in the benchmark's Node process is read from. */
export function now() {
  return performance.now();
}

/** The first arrival of each message at each client, and waits for a message to reach them all. */
export class Arrivals {
  constructor() {
    this.byMessage = new Map(); // message id -> Map(client index -> arrival ms)
    this.waiters = new Map(); // message id -> [{count, resolve}]
  }

  /** Record that a client has a message now, unless it had it already (an edit, a later poll). */
  record(client, id, at = now()) {
    let clients = this.byMessage.get(id);
    if (clients === undefined) {
      clients = new Map();
      this.byMessage.set(id, clients);
    }
    if (clients.has(client)) return;
    clients.set(client, at);
    for (const waiter of [...(this.waiters.get(id) || [])]) {
      if (clients.size >= waiter.count) waiter.resolve();
    }
  }

  /** Return how many clients have a message. */
  count(id) {
    return this.byMessage.get(id)?.size || 0;
  }

  /** Return the arrival time of a message at a client, or null if it never came. */
  arrival(client, id) {
    return this.byMessage.get(id)?.get(client) ?? null;
  }

  /** Return the first and last arrival times of a message, or nulls. */
  span(id) {
    const times = [...(this.byMessage.get(id)?.values() || [])];
    if (times.length === 0) return { first: null, last: null };
    return { first: Math.min(...times), last: Math.max(...times) };
  }

  /** Resolve once count clients have the message, or after timeoutMs, whichever comes first. */
  waitFor(id, count, timeoutMs) {
    if (this.count(id) >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiter = { count, resolve: done };
      const list = this.waiters.get(id) || [];
      list.push(waiter);
      this.waiters.set(id, list);

      function done() {
        clearTimeout(timer);
        const position = list.indexOf(waiter);
        if (position >= 0) list.splice(position, 1);
        resolve();
      }
    });
  }
}
