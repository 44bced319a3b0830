// polling-tab.mjs: one browser tab of v0.13, which asks the server for news every 2 seconds.
//
// It makes the requests that v0.13's app.js makes, in its order: the users changed
// since the last poll, the messages changed since then (a page at a time), the
// statistics; then it waits the poll interval and starts again. A tab's requests
// go one after the other over one keep-alive connection of its own.

import { requestJson, oneConnection } from "./http-json.mjs";

// A browser's fetch waits as long as the server takes; this is long enough to count as forever.
const REQUEST_TIMEOUT_MS = 60000;

/** Add query parameters to a path the way v0.13's api.js does, leaving out null ones. */
function withQuery(path, parameters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null) query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** Return the largest updated_at among items and since. */
function latestUpdate(items, since) {
  let latest = since;
  for (const item of items) {
    if (latest === null || item.updated_at > latest) latest = item.updated_at;
  }
  return latest;
}

export class PollingTab {
  /** A tab of client number index, logged in with token; its settings are app.js's constants. */
  constructor({ index, baseUrl, token, pollMs, pageSize, maxPages, arrivals, counters }) {
    Object.assign(this, { index, baseUrl, pollMs, pageSize, maxPages, arrivals, counters });
    this.authorization = { Authorization: `Bearer ${token}` };
    this.agent = oneConnection();
    this.usersSince = null;
    this.messagesSince = null;
    this.timer = null;
    this.running = false;
  }

  /** Send one request, counting it and any error. */
  async request(path, headers = {}) {
    try {
      return await this.get(path, headers);
    } catch (error) {
      this.counters.httpErrors += 1;
      this.counters.lastError = error.message;
      throw error;
    } finally {
      this.counters.requests += 1;
    }
  }

  /** GET path; send it again, once, if the server had just closed the kept-alive connection. */
  async get(path, headers) {
    const options = { headers, timeoutMs: REQUEST_TIMEOUT_MS };
    try {
      return await requestJson(this.agent, this.baseUrl, "GET", path, options);
    } catch (error) {
      // The server closes a connection idle for a few seconds; if it does so as a request
      // leaves, a browser sends the request again on a new connection, and so do we.
      if (!(error.reusedSocket && error.code === "ECONNRESET")) throw error;
      this.counters.retries += 1;
      return requestJson(this.agent, this.baseUrl, "GET", path, options);
    }
  }

  /** Fetch the users changed since the last poll. */
  async refreshUsers() {
    const data = await this.request(withQuery("/api/users", { updated_since: this.usersSince }),
      this.authorization);
    this.usersSince = latestUpdate(data.users, this.usersSince);
  }

  /** Fetch the messages changed since the last poll, a page at a time, noting new ones. */
  async refreshMessages() {
    for (let page = 0; page < this.maxPages; page += 1) {
      const path = withQuery("/api/messages", { updated_since: this.messagesSince, limit: this.pageSize });
      const { messages } = await this.request(path, this.authorization);
      for (const message of messages) this.arrivals.record(this.index, message.id);
      this.messagesSince = latestUpdate(messages, this.messagesSince);
      if (messages.length < this.pageSize) break;
    }
  }

  /** Fetch the statistics, without the token, as app.js does. */
  async refreshStats() {
    await this.request("/api/stats");
  }

  /** Poll once, then schedule the next poll after the interval; resolve after this poll. */
  async poll() {
    try {
      await this.refreshUsers();
      await this.refreshMessages();
      await this.refreshStats();
    } catch {
      // Counted in request(); the page shows "Connection problem" and polls again.
    }
    if (this.running) this.timer = setTimeout(() => this.poll(), this.pollMs);
  }

  /** Start polling after delayMs; resolve when the first poll is done. */
  start(delayMs) {
    this.running = true;
    return new Promise((resolve) => {
      this.timer = setTimeout(() => this.poll().then(resolve), delayMs);
    });
  }

  /** Stop polling and close the tab's connection. */
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.agent.destroy();
  }
}
