"""Free loopback ports for the servers that the tutorial's tools start (standard library only)."""
import socket


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    """Tell whether nothing listens on a loopback TCP port right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports_in_a_row(count):
    """Return the first of count neighbouring loopback ports that are all free."""
    # honcho gives the web processes PORT, PORT + 1, ...: each of them must be free.
    while True:
        first = free_port()
        if all(port_is_free(first + offset) for offset in range(1, count)):
            return first
