"""An experiment, never for the app: each broadcast framed once and written from one task.

python-socketio encodes a broadcast's Socket.IO packet once, then hands a copy to
each client's Engine.IO queue; a writer task per client takes it, encodes the
Engine.IO packet, frames it as a WebSocket message (compressing it if agreed) and
writes it. Node's socket.io frames a broadcast once and writes the same bytes to
every socket. This message queue manager does the same for the broadcasts it
receives: one frame, written to every WebSocket in turn, by the task that
received it. It reaches into engineio's internals (the WebSocket of each
client), which is why it stays in the benchmark.
"""
import engineio.socket
from socketio import RedisManager

_websocket_handler = engineio.socket.Socket._websocket_handler


def remembering_websocket_handler(self, ws):
    """Keep the client's WebSocket on its Engine.IO socket, then serve it as before."""
    self.bench_websocket = ws
    return _websocket_handler(self, ws)


engineio.socket.Socket._websocket_handler = remembering_websocket_handler


def text_frame(text):
    """Return text as one unmasked, uncompressed WebSocket text frame, as a server sends it."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes([0x81, size])
    elif size < 1 << 16:
        header = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return header + payload


class FramedOnceRedisManager(RedisManager):
    """A Redis message queue whose plain broadcasts are framed once for every client."""

    def _handle_emit(self, message):
        """Frame a broadcast to everyone once and write it to each WebSocket; else as before."""
        plain = (message.get("room") is None and message.get("callback") is None
                 and not message.get("binary") and message.get("skip_sid") is None)
        if not plain:
            return super()._handle_emit(message)
        namespace = message.get("namespace") or "/"
        sockets = [self.server.eio.sockets.get(eio_sid)
                   for _, eio_sid in self.get_participants(namespace, None)]
        websockets = [getattr(s, "bench_websocket", None) for s in sockets]
        if None in websockets:  # a client still polling, or just gone: the usual way
            return super()._handle_emit(message)
        data = message["data"] if isinstance(message["data"], list) else [message["data"]]
        packet = self.server.packet_class(2, namespace=namespace,  # 2: a Socket.IO EVENT
                                          data=[message["event"], *data])
        frame = text_frame("4" + packet.encode())  # 4: an Engine.IO MESSAGE
        for websocket in websockets:
            websocket.ws.sock.sendall(frame)  # engineio's wrapper, then simple-websocket's
