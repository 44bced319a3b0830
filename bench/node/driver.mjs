// driver.mjs: the benchmark's load generator, driven by the Python harness.
//
// The harness writes one command a line on stdin, as JSON, and reads one answer a
// line on stdout: {"done": "<command>", ...} or {"error": "..."}, perhaps after some
// {"progress": "..."} lines. Between two commands the harness reads the server's CPU
// time, so a window measures exactly what the clients did in it. All the clients
// live in this one process and every time comes from its one clock, so a latency is
// the difference of two readings of the same clock.
//
//   open     N tabs: v0.13's polling tabs, or Socket.IO tabs (v0.17, the reference)
//   idle     wait some seconds; count what the tabs sent and received meanwhile
//   deliver  post messages at a steady pace; when did each tab have each one?
//   rounds   post one message at a time; when did the first and the last tab have it?
//   close    close every tab

import { serveCommands, send } from "./commands.mjs";
import { Arrivals, now } from "./arrivals.mjs";
import { oneConnection, requestJson } from "./http-json.mjs";
import { PollingTab } from "./polling-tab.mjs";
import { SocketTab } from "./socket-tab.mjs";

const CONNECT_BATCH = 50; // Socket.IO connections opened at once
const CONNECT_TIMEOUT_MS = 20000;
const POST_TIMEOUT_MS = 60000; // a browser would wait that long for its message to be sent

let tabs = [];
let arrivals = new Arrivals();
let counters = newCounters();

/** Return counters at zero: what the tabs sent and received. */
function newCounters() {
  return {
    requests: 0, httpErrors: 0, lastError: null, retries: 0, heartbeats: 0, disconnects: 0,
    events: {},
  };
}

/** Tell the harness how a long command is getting on. */
function progress(text) {
  send({ progress: text });
}

/** Wait for ms milliseconds. */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Return the CPU seconds this process has used since a process.cpuUsage() reading. */
function cpuSecondsSince(reading) {
  const used = process.cpuUsage(reading);
  return (used.user + used.system) / 1e6;
}

/** Return what the counters grew by since a copy of them was taken. */
function countedSince(before) {
  const events = {};
  for (const [name, count] of Object.entries(counters.events)) {
    events[name] = count - (before.events[name] || 0);
  }
  return {
    requests: counters.requests - before.requests,
    http_errors: counters.httpErrors - before.httpErrors,
    last_error: counters.lastError,
    retries: counters.retries - before.retries,
    heartbeats: counters.heartbeats - before.heartbeats,
    disconnects: counters.disconnects - before.disconnects,
    events,
  };
}

/** Open v0.13 tabs, each starting its polls at its own moment of one poll interval. */
async function openPollingTabs({ base_url: baseUrl, tokens, clients, poll_ms: pollMs,
  page_size: pageSize, max_pages: maxPages }) {
  tabs = Array.from({ length: clients }, (_, index) => new PollingTab({
    index, baseUrl, token: tokens[index % tokens.length], pollMs, pageSize, maxPages,
    arrivals, counters,
  }));
  // Evenly spread, as tabs opened at random times would be, not all polling at once.
  await Promise.all(tabs.map((tab, index) => tab.start((index * pollMs) / clients)));
}

/** Open Socket.IO tabs a batch at a time, then start their heartbeats, evenly spread too.
 *
 * base_urls, instead of base_url: the tabs take turns, tab n connecting to base_urls[n % length].
 */
async function openSocketTabs({ base_url: baseUrl, base_urls: baseUrls = [baseUrl], tokens,
  clients, heartbeat_ms: heartbeatMs, compress = true }) {
  tabs = Array.from({ length: clients }, (_, index) => new SocketTab({
    index, baseUrl: baseUrls[index % baseUrls.length], token: tokens[index % tokens.length],
    compress, arrivals, counters,
  }));
  for (let first = 0; first < clients; first += CONNECT_BATCH) {
    const batch = tabs.slice(first, first + CONNECT_BATCH);
    await Promise.all(batch.map((tab) => tab.connect(CONNECT_TIMEOUT_MS)));
    if (clients > 200 && (first + batch.length) % 250 === 0) {
      progress(`${first + batch.length} of ${clients} connected`);
    }
  }
  if (heartbeatMs) {
    tabs.forEach((tab, index) => tab.startHeartbeat((index * heartbeatMs) / clients, heartbeatMs));
  }
}

/** Open the tabs of one kind; answer how long it took, and what the WebSockets agreed to. */
async function open(command) {
  const started = now();
  if (command.kind === "polling") await openPollingTabs(command);
  else await openSocketTabs(command);
  const seconds = (now() - started) / 1000;
  // Compression, say, which the client offers and a server may accept.
  const extensions = command.kind === "polling" ? null : tabs[0]?.extensions() ?? null;
  return { clients: tabs.length, seconds, websocket_extensions: extensions };
}

/** Let the tabs be for some seconds; answer what they sent and received, and our CPU time. */
async function idle({ seconds }) {
  const before = structuredClone(counters);
  const cpu = process.cpuUsage();
  const started = now();
  await sleep(seconds * 1000);
  return {
    seconds: (now() - started) / 1000, loadgen_cpu_seconds: cpuSecondsSince(cpu),
    ...countedSince(before),
  };
}

/** Post one message; return its id, when it was sent and how long the POST took. */
async function post(agent, baseUrl, path, body, headers) {
  const sentAt = now();
  const message = await requestJson(agent, baseUrl, "POST", path,
    { body, headers, timeoutMs: POST_TIMEOUT_MS });
  return { id: message.id, sentAt, postMs: now() - sentAt };
}

/**
 * Post a message every interval_ms, over `posters` connections in turn (to base_url, or
 * to each of base_urls in turn), then wait for each
 * tab to have each; answer the latencies. A message is due on its beat, whatever the POSTs
 * before it took: one that finds its connection still busy waits for it, and that wait
 * counts in its latency, as it would for a person whose message is slow to go out.
 */
async function deliver({ base_url: baseUrl, base_urls: baseUrls = [baseUrl], token, messages,
  interval_ms: intervalMs, wait_ms: waitMs, source, posters = 1 }) {
  const agents = Array.from({ length: posters }, () => oneConnection());
  const headers = { Authorization: `Bearer ${token}` };
  const before = structuredClone(counters);
  const cpu = process.cpuUsage();
  const started = now();
  const pending = [];
  for (let n = 0; n < messages; n += 1) {
    await sleep(started + n * intervalMs - now());
    const poster = n % posters; // poster connection k goes to base_urls[k], in turn
    const posted = post(agents[poster], baseUrls[poster % baseUrls.length], "/api/messages",
      { source: `${source} (${n + 1})` }, headers);
    posted.catch(() => {}); // not unhandled meanwhile: Promise.all below reports the first error
    pending.push(posted);
  }
  const posts = await Promise.all(pending);
  const deadline = now() + waitMs;
  for (const { id } of posts) await arrivals.waitFor(id, tabs.length, deadline - now());
  for (const agent of agents) agent.destroy();
  return {
    loadgen_cpu_seconds: cpuSecondsSince(cpu),
    ...countedSince(before),
    messages: posts.map(({ id, sentAt, postMs }) => ({
      id,
      post_ms: postMs,
      // Counted from just before the POST was sent; null: this tab never had it.
      latencies_ms: tabs.map((tab) => {
        const at = arrivals.arrival(tab.index, id);
        return at === null ? null : at - sentAt;
      }),
    })),
  };
}

/** Post one message at a time; answer when the first and the last tab had each. */
async function rounds({ base_url: baseUrl, path, body, headers, rounds: count,
  pause_ms: pauseMs, wait_ms: waitMs }) {
  const agent = oneConnection();
  const measured = [];
  for (let round = 0; round < count; round += 1) {
    const statsBefore = counters.events.stats || 0;
    const cpu = process.cpuUsage();
    const { id, sentAt, postMs } = await post(agent, baseUrl, path, body, headers);
    await arrivals.waitFor(id, tabs.length, waitMs);
    const { first, last } = arrivals.span(id);
    const missing = tabs.length - arrivals.count(id);
    measured.push({
      post_ms: postMs,
      first_ms: first === null ? null : first - sentAt,
      all_ms: missing ? null : last - sentAt,
      missing,
      // Statistics pushed to the tabs while this round went on, which it waited behind.
      stats_pushes: (counters.events.stats || 0) - statsBefore,
      loadgen_cpu_ms: cpuSecondsSince(cpu) * 1000,
    });
    await sleep(pauseMs);
  }
  agent.destroy();
  return { rounds: measured, disconnects: counters.disconnects };
}

/** Close every tab and forget what they received. */
async function close() {
  const closed = tabs.length;
  for (const tab of tabs) tab.stop();
  tabs = [];
  arrivals = new Arrivals();
  counters = newCounters();
  await sleep(100); // let the close frames go out
  return { closed };
}

const COMMANDS = { open, idle, deliver, rounds, close };

serveCommands(COMMANDS);
