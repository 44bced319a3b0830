// app.js: the Flack page. A login form, then the chat, which the server keeps fresh
// by pushing every change over Socket.IO.

import { io } from "/vendor/socket.io.esm.min.js";
import * as api from "./api.js";
import { showError } from "./dom.js";
import { clearMessages, mergeMessages, messageCount, redrawAuthors } from "./messages.js";
import { clearUsers, mergeUsers, nicknameOf, renderUsers } from "./users.js";

const PAGE_SIZE = 100; // users or messages per request
const BOTTOM_SLACK_PX = 40; // "at the bottom" allows for a little rounding

const byId = (id) => document.getElementById(id);
const ui = {
  loginView: byId("login-view"),
  loginForm: byId("login-form"),
  nickname: byId("nickname"),
  password: byId("password"),
  loginButton: byId("login-button"),
  loginError: byId("login-error"),
  chatView: byId("chat-view"),
  account: byId("account"),
  me: byId("me"),
  logout: byId("logout"),
  stats: byId("stats"),
  rps: byId("rps"),
  connection: byId("connection"),
  userList: byId("user-list"),
  onlineCount: byId("online-count"),
  scroller: byId("message-scroller"),
  messageList: byId("message-list"),
  noMessages: byId("no-messages"),
  postForm: byId("post-form"),
  postSource: byId("post-source"),
  postButton: byId("post-button"),
  postError: byId("post-error"),
};

let session = null; // {token, nickname} while logged in
// The largest change numbers fetched through the API: after a reconnection, the
// page asks for what changed after them. Pushed changes do not move them, because
// pushes from two processes may arrive out of order.
let usersSince = null;
let messagesSince = null;
// Every change up to fetchedUpTo is on this page, and so are those in pushedSince, pushed
// after it. When the server says that its latest change is n, and a number up to n is in
// neither, a push was lost on its way here (or the number was never used), and the page
// fetches what changed. The newest change pushed is not enough: a push can be lost while
// a later one arrives.
let fetchedUpTo = 0;
let pushedSince = new Set();
const MOST_NUMBERS_CHECKED = 1000; // beyond, fetching is cheaper than checking
let socket = null; // the Socket.IO connection while logged in
let run = 0; // changes on log in and out, so late answers for an old session are dropped

/** Turn any error into a sentence for the user. */
function describe(error) {
  if (error instanceof api.ApiError) return error.message;
  return "Cannot reach the server. Please check your connection and try again.";
}

/** Return the largest change number among items and since. */
function latestChange(items, since) {
  let latest = since;
  for (const item of items) {
    if (latest === null || item.change > latest) latest = item.change;
  }
  return latest;
}

/** Tell whether the message list is scrolled to (nearly) the bottom. */
function isAtBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < BOTTOM_SLACK_PX;
}

/** Scroll the message list to its newest message. */
function scrollToBottom(scroller) {
  scroller.scrollTop = scroller.scrollHeight;
}

/** Describe a message's author for display. */
function authorOf(userId) {
  const nickname = nicknameOf(userId);
  return { nickname, isMe: nickname === session?.nickname };
}

/** Show one line about the connection in the top bar, or hide it. */
function showConnection(text) {
  ui.connection.textContent = text || "";
  ui.connection.hidden = !text;
}

/** Forget everything from the last session and close its connection. */
function resetChat() {
  socket?.disconnect();
  socket = null;
  run += 1;
  usersSince = null;
  messagesSince = null;
  fetchedUpTo = 0;
  pushedSince = new Set();
  clearUsers();
  clearMessages(ui.messageList);
  ui.userList.replaceChildren();
  ui.onlineCount.textContent = "";
  ui.noMessages.hidden = true;
  ui.postSource.value = "";
  showError(ui.postError, "");
  showConnection("");
}

/** Show the login form, with an optional explanation. */
function showLogin(message = "") {
  session = null;
  resetChat();
  ui.chatView.hidden = true;
  ui.account.hidden = true;
  ui.stats.hidden = true;
  ui.loginView.hidden = false;
  showError(ui.loginError, message);
  ui.nickname.focus();
}

/** Show the chat for the logged in user and connect to the server. */
function showChat() {
  resetChat();
  ui.me.textContent = session.nickname;
  ui.loginView.hidden = true;
  ui.account.hidden = false;
  ui.stats.hidden = false;
  ui.chatView.hidden = false;
  ui.postSource.focus();
  connect(run);
}

/** Show users that changed, and redraw the People list. */
function showUsers(users) {
  if (users.length === 0) return;
  const renamed = mergeUsers(users);
  const online = renderUsers(ui.userList, session.nickname);
  ui.onlineCount.textContent = `(${online} online)`;
  if (renamed.size > 0) redrawAuthors(renamed, authorOf);
}

/** Fetch the users that changed while we were not connected, a page at a time. */
async function catchUpUsers(thisRun) {
  for (;;) {
    const users = await api.getUsers(usersSince, PAGE_SIZE);
    if (thisRun !== run) return;
    showUsers(users);
    usersSince = latestChange(users, usersSince);
    if (users.length < PAGE_SIZE) break;
  }
}

/** Add or replace messages, keeping the reader at the bottom if they were there. */
function showMessages(messages, scroll) {
  if (messages.length === 0) return;
  const stick = scroll || isAtBottom(ui.scroller);
  mergeMessages(ui.messageList, messages, authorOf);
  if (stick) scrollToBottom(ui.scroller);
}

/** Fetch the messages that changed while we were not connected, a page at a time. */
async function catchUpMessages(thisRun) {
  const firstLoad = messagesSince === null;
  // Every page, until one comes back short: no later poll will fetch the rest.
  for (;;) {
    const messages = await api.getMessages(messagesSince, PAGE_SIZE);
    if (thisRun !== run) return;
    showMessages(messages, firstLoad);
    messagesSince = latestChange(messages, messagesSince);
    if (messages.length < PAGE_SIZE) break;
  }
  ui.noMessages.hidden = messageCount() > 0;
}

/** Fetch what changed before the connection opened (or while it was down); tell whether it worked. */
async function catchUp(thisRun) {
  try {
    // Users first, so that new messages can show their author's nickname.
    await catchUpUsers(thisRun);
    await catchUpMessages(thisRun);
    if (thisRun === run) showConnection("");
    return true;
  } catch (error) {
    // After a 401 we are back at the login form, and run has changed.
    if (thisRun !== run) return false;
    showConnection("Connection problem: reload the page to try again.");
    console.error(error);
    return false;
  }
}

/** Remember the change numbers of rows the server pushed. */
function notePushed(items) {
  for (const item of items) if (item.change > fetchedUpTo) pushedSince.add(item.change);
}

/** Tell whether every change number up to change was pushed to this page or fetched. */
function hasEveryChangeUpTo(change) {
  if (change - fetchedUpTo > MOST_NUMBERS_CHECKED) return false;
  for (let number = fetchedUpTo + 1; number <= change; number++) {
    if (!pushedSince.has(number)) return false;
  }
  return true;
}

/** Move fetchedUpTo to change, and forget the pushed numbers up to it. */
function haveUpTo(change) {
  fetchedUpTo = Math.max(fetchedUpTo, change);
  pushedSince = new Set([...pushedSince].filter((number) => number > fetchedUpTo));
}

/** Fetch what changed if a change up to the server's latest is missing here. */
async function catchUpTo(change, thisRun) {
  if (change <= fetchedUpTo) return;
  if (hasEveryChangeUpTo(change)) {
    haveUpTo(change);
    return;
  }
  // The server read its latest number after that change's commit: once the fetch is
  // done, every change up to it is here, or was a number never used.
  if ((await catchUp(thisRun)) && thisRun === run) haveUpTo(change);
}

/** Open the connection on which the server pushes changes, logged in with our token. */
function connect(thisRun) {
  // Same origin, and the token in the handshake: the server reads it once, on connect.
  socket = io({ auth: { token: session.token } });
  socket.on("connect", () => {
    // Connected first, fetched second: a change made in between comes both ways,
    // and the newer version of each row wins.
    catchUp(thisRun);
  });
  socket.on("connect_error", (error) => {
    if (socket.active) {
      showConnection("Connection lost, reconnecting…"); // the client tries again
    } else {
      // The server refused us: our token is no longer valid. Only this ends the
      // session: a closed connection says nothing about the token.
      api.forgetSession();
      showLogin("Your session has ended. Please log in again.");
      console.error(error.message);
    }
  });
  socket.on("disconnect", (reason) => {
    if (thisRun !== run) return; // we closed it: logged out
    showConnection("Connection lost, reconnecting…");
    // The client reconnects by itself, except after the server closed the connection;
    // then we reconnect, and the server lets us in again while our token is valid.
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("latest_change", ({ change }) => catchUpTo(change, thisRun));
  socket.on("user_changed", (user) => {
    notePushed([user]);
    showUsers([user]);
  });
  socket.on("message_changed", (message) => {
    notePushed([message]);
    showMessages([message], false);
    ui.noMessages.hidden = true;
  });
  socket.on("stats", (stats) => {
    ui.rps.textContent = stats.requests_per_second.toFixed(1);
  });
}

/** Log in (or sign up) with the nickname and password from the form. */
async function handleLogin(event) {
  event.preventDefault();
  showError(ui.loginError, "");
  ui.loginButton.disabled = true;
  try {
    session = await api.logIn(ui.nickname.value.trim(), ui.password.value);
    ui.password.value = "";
    showChat();
  } catch (error) {
    showError(ui.loginError, describe(error));
  } finally {
    ui.loginButton.disabled = false;
  }
}

/** Switch the post box on or off while a message is being sent. */
function setSending(sending) {
  ui.postSource.disabled = sending;
  ui.postButton.disabled = sending;
}

/** Send the message in the post box. */
async function handlePost(event) {
  event.preventDefault();
  const source = ui.postSource.value;
  if (!source.trim()) return;
  showError(ui.postError, "");
  setSending(true);
  const thisRun = run;
  try {
    const message = await api.postMessage(source);
    if (thisRun !== run) return; // logged out while sending
    ui.postSource.value = "";
    // Show it now, whether or not its push has arrived: the newer version wins.
    showMessages([message], true);
    ui.noMessages.hidden = true;
  } catch (error) {
    // A 401 has already taken us back to the login form; anything else is shown here.
    const loggedOut = error instanceof api.ApiError && error.status === 401;
    if (!loggedOut) showError(ui.postError, describe(error));
  } finally {
    setSending(false);
    if (session) ui.postSource.focus();
  }
}

/** Enter sends the message; Shift+Enter adds a new line as usual. */
function handlePostKey(event) {
  // isComposing: Enter may just be confirming a word in an input method.
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  event.preventDefault();
  if (ui.postSource.value.trim()) ui.postForm.requestSubmit();
}

/** Log out on the server, then go back to the login form. */
async function handleLogout() {
  ui.logout.disabled = true;
  resetChat();
  await api.logOut();
  ui.logout.disabled = false;
  showLogin();
}

/** Wire up the page and show the chat or the login form. */
function start() {
  api.setUnauthorizedHandler(() => showLogin("Your session has ended. Please log in again."));
  ui.loginForm.addEventListener("submit", handleLogin);
  ui.postForm.addEventListener("submit", handlePost);
  ui.postSource.addEventListener("keydown", handlePostKey);
  ui.logout.addEventListener("click", handleLogout);
  session = api.loadSession();
  if (session) showChat();
  else showLogin();
}

start();
