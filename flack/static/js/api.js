// api.js: every call to the Flack server's JSON API, and the saved login token.

// sessionStorage belongs to one tab, so two tabs can be logged in as two users.
const TOKEN_KEY = "flack.token";
const NICKNAME_KEY = "flack.nickname";

/** An error answer from the server: its HTTP status and human readable message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

let onUnauthorized = () => {};

/** Set the function to call when the server no longer accepts our token. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** Return the saved {token, nickname}, or null when logged out. */
export function loadSession() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const nickname = sessionStorage.getItem(NICKNAME_KEY);
  return token && nickname ? { token, nickname } : null;
}

/** Remember the token and whose it is for this tab. */
function saveSession(token, nickname) {
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(NICKNAME_KEY, nickname);
}

/** Forget the token (the user is logged out). */
export function forgetSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NICKNAME_KEY);
}

/** Decode a JSON body; an empty or non-JSON body (say, a proxy's error page) gives null. */
function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Send one request; return the JSON body (null when empty) or throw an ApiError. */
async function request(method, path, { body, authorization } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (authorization) headers.Authorization = authorization;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const data = parseJson(await response.text());
  if (!response.ok) {
    const message = data?.message || data?.error || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** Send a request with our Bearer token; a 401 means the token is dead, so forget it. */
async function requestWithToken(method, path, options = {}) {
  const session = loadSession();
  const authorization = session ? `Bearer ${session.token}` : undefined;
  try {
    return await request(method, path, { ...options, authorization });
  } catch (error) {
    if (session && error instanceof ApiError && error.status === 401) {
      forgetSession();
      onUnauthorized();
    }
    throw error;
  }
}

/** Build the value of a Basic Authorization header. */
function basicAuthorization(nickname, password) {
  // btoa() only takes characters 0-255, so feed it the UTF-8 bytes one by one.
  const bytes = new TextEncoder().encode(`${nickname}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** Ask for a new token with a nickname and password. */
function requestToken(nickname, password) {
  return request("POST", "/api/tokens", {
    authorization: basicAuthorization(nickname, password),
  });
}

/** Create a new user; a taken nickname means the password was wrong. */
async function register(nickname, password) {
  try {
    return await request("POST", "/api/users", { body: { nickname, password } });
  } catch (error) {
    // We only register after the token request failed, so if the nickname
    // exists, the password we were given was not its password.
    if (error instanceof ApiError && error.status === 409) {
      throw new ApiError(401, "Wrong password for this nickname.");
    }
    throw error;
  }
}

/** Log in, signing up first if the nickname is new; return the saved session. */
export async function logIn(nickname, password) {
  let answer;
  try {
    answer = await requestToken(nickname, password);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    const user = await register(nickname, password);
    nickname = user.nickname;
    answer = await requestToken(nickname, password);
  }
  saveSession(answer.token, nickname);
  return loadSession();
}

/** Revoke our token on the server (best effort) and forget it here. */
export async function logOut() {
  const session = loadSession();
  forgetSession();
  if (!session) return;
  try {
    await request("DELETE", "/api/tokens", { authorization: `Bearer ${session.token}` });
  } catch {
    // The token is forgotten either way; nothing more to do.
  }
}

/** Add ?after= (and other parameters) to a path. */
function withQuery(path, parameters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null) query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** Fetch up to limit users changed after a change number (from the first when after is null). */
export async function getUsers(after, limit) {
  const data = await requestWithToken("GET", withQuery("/api/users", { after, limit }));
  return data.users;
}

/** Fetch up to limit messages changed after a change number (the latest when after is null). */
export async function getMessages(after, limit) {
  const path = withQuery("/api/messages", { after, limit });
  const data = await requestWithToken("GET", path);
  return data.messages;
}

/** Post a new message written in Markdown; return the created message. */
export function postMessage(source) {
  return requestWithToken("POST", "/api/messages", { body: { source } });
}
