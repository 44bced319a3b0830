// bystander.mjs: login-flood's bystander and poster, driven by the Python harness.
//
// It speaks driver.mjs's protocol (one JSON command a line on stdin, one JSON answer a
// line on stdout) and reuses its tab, clock and HTTP modules, with two differences that
// an overloaded server needs: a POST that fails or is not answered in time is written
// down instead of failing the whole command, and the time may be longer than driver.mjs's
// minute, since under a flood of logins an event loop that hashes passwords answers late.
//
//   open   connect the bystander's Socket.IO client, with its token, as the page does
//   post   post a message every interval_ms, the posters in turn; when did the bystander
//          have each one?
//   close  close the bystander's connection

import { serveCommands, send } from "./commands.mjs";
import { Arrivals, now } from "./arrivals.mjs";
import { oneConnection, requestJson } from "./http-json.mjs";
import { SocketTab } from "./socket-tab.mjs";

const CONNECT_TIMEOUT_MS = 20000;

let bystander = null;
let arrivals = new Arrivals();
let drops = []; // {at, reason} for each time the server dropped the bystander

/** Wait for ms milliseconds. */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Connect the bystander; say `still_here` every heartbeat_ms if the stage's page does. */
async function open({ base_url: baseUrl, token, heartbeat_ms: heartbeatMs }) {
  arrivals = new Arrivals();
  drops = [];
  const tab = new SocketTab({
    index: 0, baseUrl, token, compress: true, arrivals,
    counters: { events: {}, heartbeats: 0, disconnects: 0 },
  });
  await tab.connect(CONNECT_TIMEOUT_MS);
  // The reason says who gave up: "ping timeout" (this side), "transport close" (the server).
  tab.socket.on("disconnect", (reason) => {
    if (!tab.closing) drops.push({ at: now(), reason });
  });
  if (heartbeatMs) tab.startHeartbeat(heartbeatMs, heartbeatMs);
  bystander = tab;
  return { websocket_extensions: tab.extensions() };
}

/** Post one message; never throw: a failure is written down with the time it took. */
async function postOne(agent, baseUrl, source, headers, timeoutMs) {
  const sentAt = now();
  try {
    const message = await requestJson(agent, baseUrl, "POST", "/api/messages",
      { body: { source }, headers, timeoutMs });
    return { id: message.id, sentAt, postMs: now() - sentAt, error: null };
  } catch (error) {
    return { id: null, sentAt, postMs: now() - sentAt, error: error.message };
  }
}

/**
 * Post a message every interval_ms, the posters (one user's token and connection each) in
 * turn, each message due on its beat whatever the POSTs before it took (a wait for a busy
 * connection counts in its latency); then wait up to wait_ms for the bystander to have them
 * all. Answer each message's times, counted from when it was due, and the drops meanwhile,
 * counted from the first message.
 */
async function post({ base_url: baseUrl, tokens, messages, interval_ms: intervalMs,
  post_timeout_ms: postTimeoutMs, wait_ms: waitMs, source }) {
  const posters = tokens.map((token) => ({
    agent: oneConnection(), headers: { Authorization: `Bearer ${token}` },
  }));
  const dropsBefore = drops.length;
  const started = now();
  const pending = [];
  for (let n = 0; n < messages; n += 1) {
    await sleep(started + n * intervalMs - now());
    const { agent, headers } = posters[n % posters.length];
    pending.push(postOne(agent, baseUrl, `${source} (${n + 1})`, headers, postTimeoutMs));
  }
  const posts = await Promise.all(pending);
  const deadline = now() + waitMs;
  for (const { id } of posts) {
    if (id !== null) await arrivals.waitFor(id, 1, deadline - now());
  }
  for (const { agent } of posters) agent.destroy();
  return {
    messages: posts.map(({ id, sentAt, postMs, error }) => {
      const at = id === null ? null : arrivals.arrival(0, id);
      return { due_ms: sentAt - started, post_ms: postMs, error,
        latency_ms: at === null ? null : at - sentAt };
    }),
    drops: drops.slice(dropsBefore).map(({ at, reason }) => ({ at_ms: at - started, reason })),
  };
}

/** Close the bystander's connection. */
async function close() {
  bystander?.stop();
  bystander = null;
  await sleep(100); // let the close frame go out
  return {};
}

const COMMANDS = { open, post, close };

serveCommands(COMMANDS);
