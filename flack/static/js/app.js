// app.js: the Flack page. A login form, then the chat, kept fresh by polling.

import * as api from "./api.js";
import { showError } from "./dom.js";
import { clearMessages, mergeMessages, messageCount, redrawAuthors } from "./messages.js";
import { clearUsers, mergeUsers, nicknameOf, renderUsers } from "./users.js";

// Every open page asks the server for news every 2 seconds, even when there
// is none. That is simple, but it is one of the scalability problems this
// tutorial comes back to fix.
const POLL_INTERVAL_MS = 2000;
const PAGE_SIZE = 100; // messages per request
const MAX_PAGES_PER_POLL = 10; // per poll; the next poll fetches the rest
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
let usersSince = null; // largest user change number seen so far
let messagesSince = null; // largest message change number seen so far
let pollTimer = null;
let pollRun = 0; // changes on log in and out, so late answers for an old session are dropped

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

/** Forget everything from the last session and stop polling. */
function resetChat() {
  clearTimeout(pollTimer);
  pollRun += 1;
  usersSince = null;
  messagesSince = null;
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

/** Show the chat for the logged in user and start polling. */
function showChat() {
  resetChat();
  ui.me.textContent = session.nickname;
  ui.loginView.hidden = true;
  ui.account.hidden = false;
  ui.stats.hidden = false;
  ui.chatView.hidden = false;
  ui.postSource.focus();
  poll(pollRun);
}

/** Fetch users that changed and redraw the People list. */
async function refreshUsers(run) {
  const users = await api.getUsers(usersSince);
  if (run !== pollRun || users.length === 0) return;
  usersSince = latestChange(users, usersSince);
  const renamed = mergeUsers(users);
  const online = renderUsers(ui.userList, session.nickname);
  ui.onlineCount.textContent = `(${online} online)`;
  if (renamed.size > 0) redrawAuthors(renamed, authorOf);
}

/** Add or replace messages, keeping the reader at the bottom if they were there. */
function showMessages(messages, scroll) {
  if (messages.length === 0) return;
  const stick = scroll || isAtBottom(ui.scroller);
  mergeMessages(ui.messageList, messages, authorOf);
  if (stick) scrollToBottom(ui.scroller);
}

/** Fetch messages that changed, a page at a time while there may be more. */
async function refreshMessages(run) {
  const firstLoad = messagesSince === null;
  for (let page = 0; page < MAX_PAGES_PER_POLL; page += 1) {
    const messages = await api.getMessages(messagesSince, PAGE_SIZE);
    if (run !== pollRun) return;
    showMessages(messages, firstLoad);
    messagesSince = latestChange(messages, messagesSince);
    if (messages.length < PAGE_SIZE) break;
  }
  ui.noMessages.hidden = messageCount() > 0;
}

/** Fetch and show the server's requests per second. */
async function refreshStats(run) {
  const rps = await api.getStats();
  if (run === pollRun) ui.rps.textContent = rps.toFixed(1);
}

/** Fetch everything new, then schedule the next poll. */
async function poll(run) {
  try {
    // Users first, so that new messages can show their author's nickname.
    await refreshUsers(run);
    await refreshMessages(run);
    await refreshStats(run);
    if (run === pollRun) showConnection("");
  } catch (error) {
    // After a 401 we are back at the login form, and pollRun has changed.
    if (run !== pollRun) return;
    showConnection("Connection problem, retrying…");
    console.error(error);
  }
  if (run === pollRun) pollTimer = setTimeout(() => poll(run), POLL_INTERVAL_MS);
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
  const run = pollRun;
  try {
    const message = await api.postMessage(source);
    if (run !== pollRun) return; // logged out while sending
    ui.postSource.value = "";
    // Show it now instead of waiting for the next poll; when the poll brings
    // it again it simply replaces itself.
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
