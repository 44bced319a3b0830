// load_clients.mjs: many Socket.IO clients in one Node.js process, for tests/test_cluster.py.
//
//   node tests/load_clients.mjs '{"servers": [...], "clients": 200, "messagesEach": 2,
//                                  "perSecond": 25}'
//
// Each client registers a user, logs in, connects to its server (the servers take
// turns), and, once every client is connected, posts a few messages: the clients take
// turns, perSecond messages a second in all, as a busy chat would. Every client
// must then have every message exactly once: pushed, or fetched through the API
// after a reconnection or when latest_change shows that a push was lost, as the
// browser does. It prints progress lines, then one
// line of JSON with the figures. One process and one clock: the latency of a message
// is the time from just before its POST to its arrival at each client.
import { io } from "socket.io-client";

const settings = JSON.parse(process.argv[2]);
const PASSWORD = "correct horse";
const DEADLINE_MS = (settings.seconds ?? 120) * 1000;
const started = performance.now();

/** Print one progress line, which the test waits for. */
function say(line) {
  process.stdout.write(`${line}\n`);
}

/** Send a JSON request; retry while the server is down (being restarted). */
async function call(server, method, path, { body, authorization } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (authorization) headers.Authorization = authorization;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const response = await fetch(server + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (response.status >= 500 && attempt < 40) throw new Error(`${response.status}`);
      return { status: response.status, data: await response.json() };
    } catch (error) {
      if (attempt >= 40) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Register a user and return an API token for them. */
async function logIn(server, nickname) {
  await call(server, "POST", "/api/users", { body: { nickname, password: PASSWORD } });
  const basic = Buffer.from(`${nickname}:${PASSWORD}`).toString("base64");
  const answer = await call(server, "POST", "/api/tokens", { authorization: `Basic ${basic}` });
  return answer.data.token;
}

/** One client: its connection, and what it received. */
class Client {
  constructor(number, server, token) {
    this.number = number;
    this.server = server;
    this.token = token;
    this.pushed = new Map(); // "id/change" -> how many times it was pushed
    this.sources = new Set(); // the texts of the messages this client has
    this.latencies = []; // [round of the message, milliseconds]
    this.cursor = null; // the largest change number fetched through the API
    this.fetchedUpTo = 0; // every change up to it is here, and those in pushedSince
    this.pushedSince = new Set();
    this.connections = 0;
  }

  /** Connect, and on each reconnection fetch what changed meanwhile. */
  connect(sentAt) {
    return new Promise((resolve) => {
      this.socket = io(this.server, {
        auth: { token: this.token }, transports: ["websocket"],
        reconnectionDelay: 250, reconnectionDelayMax: 1000,
      });
      this.socket.on("message_changed", (message) => this.receive(message, sentAt));
      this.socket.on("user_changed", (user) => this.pushedSince.add(user.change));
      this.socket.on("latest_change", ({ change }) => this.catchUpTo(change));
      this.socket.on("connect", () => {
        this.connections += 1;
        this.catchUp();
        resolve();
      });
    });
  }

  /** Count a pushed message, and how long it took since its POST started. */
  receive(message, sentAt) {
    this.pushedSince.add(message.change);
    const key = `${message.id}/${message.change}`;
    this.pushed.set(key, (this.pushed.get(key) ?? 0) + 1);
    if (!this.sources.has(message.source) && sentAt.has(message.source)) {
      const round = Number(message.source.split(".").at(-1));
      this.latencies.push([round, performance.now() - sentAt.get(message.source)]);
    }
    this.sources.add(message.source);
  }

  /** Fetch the messages that changed after the cursor, a page at a time. */
  async catchUp() {
    for (;;) {
      const after = this.cursor === null ? "" : `&after=${this.cursor}`;
      const { data } = await call(this.server, "GET", `/api/messages?limit=500${after}`);
      for (const message of data.messages) {
        this.sources.add(message.source);
        this.cursor = Math.max(this.cursor ?? 0, message.change);
      }
      if (data.messages.length < 500 || this.cursor === null) return;
    }
  }

  /** Fetch what changed if a change up to the server's latest is missing, as the page does. */
  async catchUpTo(change) {
    if (change <= this.fetchedUpTo) return;
    let missing = false;
    for (let number = this.fetchedUpTo + 1; number <= change && !missing; number += 1) {
      missing = !this.pushedSince.has(number);
    }
    if (missing) await this.catchUp();
    this.fetchedUpTo = Math.max(this.fetchedUpTo, change);
  }

  /** Post a message, and remember when its POST started. */
  async post(source, sentAt) {
    sentAt.set(source, performance.now());
    const { status } = await call(this.server, "POST", "/api/messages", {
      body: { source }, authorization: `Bearer ${this.token}`,
    });
    if (status !== 201) throw new Error(`POST answered ${status}`);
  }
}

/** Return the value at a fraction of the sorted samples (nearest rank). */
function percentile(sorted, fraction) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

async function main() {
  const sentAt = new Map(); // message text -> when its POST started
  const clients = [];
  for (let number = 0; number < settings.clients; number += 1) {
    const server = settings.servers[number % settings.servers.length];
    const token = await logIn(server, `load${number}`);
    clients.push(new Client(number, server, token));
  }
  await Promise.all(clients.map((client) => client.connect(sentAt)));
  say("connected");

  const sources = [];
  const posts = [];
  // How many (client, message) pairs are still missing.
  const missing = () => clients.reduce(
    (sum, client) => sum + sources.filter((source) => !client.sources.has(source)).length, 0);
  /** Wait until every client has every message so far, or the time is up. */
  const allDelivered = async () => {
    while (missing() > 0 && performance.now() - started < DEADLINE_MS) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  for (let round = 0; round < settings.messagesEach; round += 1) {
    if (round === 1) {
      // The first round undisturbed; the test may kill a server from now on.
      await Promise.all(posts);
      await allDelivered();
      say("posting");
    }
    const roundStarted = performance.now();
    for (const [index, client] of clients.entries()) {
      const due = roundStarted + (index * 1000) / settings.perSecond;
      await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
      const source = `load message ${client.number}.${round}`;
      sources.push(source);
      posts.push(client.post(source, sentAt));
    }
  }
  await Promise.all(posts);
  say("posted");

  await allDelivered();
  const lost = missing();
  const latencies = (wanted) => clients.flatMap((client) => client.latencies)
    .filter(([round]) => wanted(round))
    .map(([, milliseconds]) => milliseconds).sort((a, b) => a - b);
  const figures = (sorted) => ({
    deliveries: sorted.length, p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99), max_ms: sorted.at(-1) ?? null,
  });
  const duplicated = clients.reduce((sum, client) => sum + [...client.pushed.values()]
    .filter((times) => times > 1).length, 0);
  const result = {
    clients: clients.length,
    servers: settings.servers.length,
    messages: sources.length,
    lost,
    duplicated,
    reconnected: clients.filter((client) => client.connections > 1).length,
    pushed: figures(latencies(() => true)),
    // The first round, before the test may kill a server, and the rounds after it.
    first_round: figures(latencies((round) => round === 0)),
    later_rounds: figures(latencies((round) => round > 0)),
    seconds: (performance.now() - started) / 1000,
  };
  for (const client of clients) client.socket.disconnect();
  say(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
