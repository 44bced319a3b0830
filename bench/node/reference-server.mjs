// reference-server.mjs: the least a Socket.IO chat server can do, on Node.js.
//
//   node reference-server.mjs PORT
//
// It lets any client connect, and on POST /api/messages it gives the JSON message it
// was sent a new id, pushes it to every connected client as "message_changed", as
// Flack does, then answers it. No database, no login, no statistics: the fan-out
// benchmark compares Flack's broadcast with this one, on the platform Socket.IO comes
// from. It listens on 127.0.0.1 only.

import http from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
let lastId = 0;

/** Read a request's whole body as JSON. */
function readJson(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("error", reject);
    request.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString()));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Answer with a status and a JSON body. */
function answer(response, status, body) {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}

const server = http.createServer(async (request, response) => {
  if (request.method !== "POST" || request.url !== "/api/messages") {
    answer(response, 404, { error: "not found" });
    return;
  }
  try {
    lastId += 1;
    const message = { ...(await readJson(request)), id: lastId };
    io.emit("message_changed", message);
    answer(response, 201, message);
  } catch (error) {
    answer(response, 400, { error: error.message });
  }
});

// Socket.IO answers its own path (/socket.io/) before the handler above sees it.
const io = new Server(server);

server.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
