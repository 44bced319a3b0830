// messages.js: the list of messages, where an edited message replaces itself in place.

import { formatTime, make, toDate } from "./dom.js";

const shown = new Map(); // message id → {message, item}
const HUES = 8; // matches the .hue-0 … .hue-7 classes in flack.css

/** Remove every message (on log out). */
export function clearMessages(list) {
  shown.clear();
  list.replaceChildren();
}

/** Pick a stable colour number for a nickname, so each author keeps one colour. */
function hueOf(nickname) {
  let sum = 0;
  for (const char of nickname) sum = (sum * 31 + char.codePointAt(0)) % 9973;
  return sum % HUES;
}

/** Return the first letter of a nickname, for the round avatar. */
function initialOf(nickname) {
  return Array.from(nickname)[0].toUpperCase();
}

/** Build the <time> element for a message. */
function renderTime(seconds) {
  const time = make("time", "", formatTime(seconds));
  time.dateTime = toDate(seconds).toISOString();
  time.title = toDate(seconds).toLocaleString();
  return time;
}

/** Build the list item for one message; author is {nickname, isMe}. */
function renderMessage(message, author) {
  const item = make("li", author.isMe ? "message mine" : "message");
  item.dataset.id = message.id;
  const avatar = make("span", `avatar hue-${hueOf(author.nickname)}`, initialOf(author.nickname));
  avatar.setAttribute("aria-hidden", "true");
  const meta = make("p", "meta");
  meta.append(make("span", "author", author.nickname), " ", renderTime(message.created_at));
  // updated_at changes when previews arrive too; edited_at only when the author edits.
  if (message.edited_at !== null) {
    meta.append(" ", make("span", "edited", "(edited)"));
  }
  const body = make("div", "body");
  // The server renders and sanitises message.html: it is the one thing we
  // ever insert as HTML. Everything else goes in as text.
  body.innerHTML = message.html;
  item.append(avatar, meta, body);
  // A background task is fetching the previews; the message comes again with them.
  if (message.previews_pending) item.append(make("p", "pending", "Fetching link previews…"));
  return item;
}

/** Insert a new item in creation order; new messages nearly always go last. */
function insertInOrder(list, item, message) {
  let before = null;
  let node = list.lastElementChild;
  // Ids grow as messages are created, so they give the creation order.
  while (node && Number(node.dataset.id) > message.id) {
    before = node;
    node = node.previousElementSibling;
  }
  list.insertBefore(item, before);
}

/** Show messages from the server, adding new ones and replacing edited ones. */
export function mergeMessages(list, messages, authorOf) {
  for (const message of messages) {
    const old = shown.get(message.id);
    // A push and a fetch can bring the same message: the higher change number is newer.
    if (old && old.message.change >= message.change) continue;
    const item = renderMessage(message, authorOf(message.user_id));
    if (old) old.item.replaceWith(item);
    else insertInOrder(list, item, message);
    shown.set(message.id, { message, item });
  }
}

/** Redraw the messages written by the given users (their nicknames changed). */
export function redrawAuthors(userIds, authorOf) {
  for (const { message, item } of shown.values()) {
    if (!userIds.has(message.user_id)) continue;
    const fresh = renderMessage(message, authorOf(message.user_id));
    item.replaceWith(fresh);
    shown.set(message.id, { message, item: fresh });
  }
}

/** Return how many messages are shown. */
export function messageCount() {
  return shown.size;
}
