// http-json.mjs: one JSON request over a keep-alive connection of the caller's own.

import http from "node:http";

/** An answer whose status is not 2xx. */
export class HttpError extends Error {
  constructor(status, method, path) {
    super(`${method} ${path} answered ${status}`);
    this.name = "HttpError";
    this.status = status;
  }
}

/** Return an agent that keeps one connection open, as a browser tab reuses its own. */
export function oneConnection() {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/** Send one request and return its decoded JSON answer; throw HttpError on a non-2xx status. */
export function requestJson(agent, baseUrl, method, path, { body, headers = {}, timeoutMs = 10000 } = {}) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const allHeaders = { Accept: "application/json", ...headers };
  if (payload !== undefined) {
    allHeaders["Content-Type"] = "application/json";
    allHeaders["Content-Length"] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const request = http.request(new URL(path, baseUrl), {
      method, agent, headers: allHeaders, timeout: timeoutMs,
    }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => {
        if (response.statusCode < 200 || response.statusCode > 299) {
          reject(new HttpError(response.statusCode, method, path));
          return;
        }
        const text = Buffer.concat(chunks).toString();
        try {
          resolve(text ? JSON.parse(text) : null);
        } catch (error) {
          reject(error);
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    request.on("error", (error) => {
      error.reusedSocket = request.reusedSocket; // a kept-alive connection the server had closed?
      reject(error);
    });
    request.end(payload);
  });
}
