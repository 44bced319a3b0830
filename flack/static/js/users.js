// users.js: everyone we know about, and the "People" list that shows them.

import { formatTime, make } from "./dom.js";

const users = new Map(); // user id → the user as the server last sent it

/** Forget every user (on log out). */
export function clearUsers() {
  users.clear();
}

/** Store users sent by the server; return the ids whose nickname is new or changed. */
export function mergeUsers(changedUsers) {
  const renamed = new Set();
  for (const user of changedUsers) {
    // A push and a fetch can bring the same user: the higher change number is newer.
    if (users.get(user.id)?.change >= user.change) continue;
    if (users.get(user.id)?.nickname !== user.nickname) renamed.add(user.id);
    users.set(user.id, user);
  }
  return renamed;
}

/** Return a user's nickname, or a stand-in if we have not heard of them yet. */
export function nicknameOf(userId) {
  return users.get(userId)?.nickname ?? `user ${userId}`;
}

/** Sort online users first, then by nickname, ignoring case. */
function compareUsers(a, b) {
  if (a.online !== b.online) return a.online ? -1 : 1;
  return a.nickname.localeCompare(b.nickname, undefined, { sensitivity: "base" });
}

/** Tell whether two nicknames are one, near enough to how the server compares them. */
function sameNickname(a, b) {
  // The server compares by RFC 8266: "ZOË" logs in as "zoë", who is shown as registered.
  const key = (nickname) => nickname.normalize("NFKC").toLowerCase();
  return key(a) === key(b);
}

/** Build the list item for one user. */
function renderUser(user, isMe) {
  const item = make("li", user.online ? "user online" : "user offline");
  const dot = make("span", "presence");
  dot.setAttribute("aria-hidden", "true");
  item.append(dot, make("span", "nickname", user.nickname));
  if (isMe) item.append(make("span", "you", "you"));
  // Screen readers get the online state as words, not as a colour.
  item.append(make("span", "visually-hidden", user.online ? ", online" : ", offline"));
  if (!user.online && user.last_seen_at) item.title = `Last seen ${formatTime(user.last_seen_at)}`;
  return item;
}

/** Redraw the People list; return how many users are online. */
export function renderUsers(list, myNickname) {
  const sorted = [...users.values()].sort(compareUsers);
  const items = sorted.map((user) => renderUser(user, sameNickname(user.nickname, myNickname)));
  list.replaceChildren(...items);
  return sorted.filter((user) => user.online).length;
}
