"""Write the nginx configuration that `make serve` runs in front of its web processes.

    python deploy/local_nginx.py --web-processes 2 --folder .serve

Honcho starts the web processes on ports 5000, 5001, ...; this nginx listens on
http://127.0.0.1:8000 and shares the browsers out among them. It is deploy/nginx.conf
without TLS, in one file that nginx runs in the foreground as this user, with all its
files in the folder. Only the standard library: make runs it before anything else.
"""
import argparse
from pathlib import Path

CONFIG = """\
# Written by deploy/local_nginx.py for `make serve`: edit that file, not this one.
daemon off;
pid {folder}/nginx.pid;
error_log stderr;
# A graceful stop waits for open connections to end, and a WebSocket never does:
# after this long, nginx closes them and stops (the browsers reconnect elsewhere).
worker_shutdown_timeout 10s;
events {{}}

http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{
        text/css css;
        text/javascript js;
        image/svg+xml svg;
    }}

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" "";
    }}

    upstream flack {{
        # The same process for every request from one address: a Socket.IO client's
        # requests must reach the process that holds its connection.
        ip_hash;
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};

        location /static/ {{
            alias {static}/;
        }}

        location /socket.io/ {{
            proxy_pass http://flack;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 60s;
            proxy_buffering off;
        }}

        location / {{
            proxy_pass http://flack;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def config(web_ports, folder, port):
    """Return the configuration for web processes on these ports, with nginx's files in folder."""
    servers = "\n".join(f"        server 127.0.0.1:{web_port};" for web_port in web_ports)
    static = Path(__file__).resolve().parent.parent / "flack" / "static"
    return CONFIG.format(folder=folder, servers=servers, port=port, static=static)


def main():
    """Write nginx.conf into the folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path(".serve"))
    parser.add_argument("--port", type=int, default=8000, help="where nginx listens")
    # Honcho gives the first web process PORT 5000, the next one 5001, and so on.
    parser.add_argument("--first-web-port", type=int, default=5000)
    args = parser.parse_args()
    if args.web_processes < 1:
        parser.error("--web-processes must be 1 or more")
    folder = args.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    web_ports = range(args.first_web_port, args.first_web_port + args.web_processes)
    (folder / "nginx.conf").write_text(config(web_ports, folder, args.port))


if __name__ == "__main__":
    main()
