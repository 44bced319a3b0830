// dom.js: small helpers for building the page safely.

/** Create an element with a class and (optional) plain text, never parsed as HTML. */
export function make(tag, className = "", text = "") {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text) element.textContent = text;
  return element;
}

/** Show a message in an error box, or hide the box when message is empty. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** Turn a Unix time in seconds into a Date. */
export function toDate(seconds) {
  return new Date(seconds * 1000);
}

/** Format a Unix time as local time, with the date too when it is not today. */
export function formatTime(seconds) {
  const date = toDate(seconds);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  const day = date.toLocaleDateString([], { day: "numeric", month: "short" });
  return `${day} ${time}`;
}
