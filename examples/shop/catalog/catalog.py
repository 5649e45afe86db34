"""The shop's catalog: the products, over HTTP/1.1 on $HOST:$PORT (Python 3, standard library only).

    GET /products       the product list
    GET /products/ID    one product
    GET /healthz        "ok"

FLAKY_EVERY=N makes this replica answer 503 to every Nth product request: a flaky replica, for the
mesh's retries and outlier detection to hide.
"""

import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("WEFT_INSTANCE") or os.environ.get("WEFT_WORKLOAD") or "catalog"
FLAKY_EVERY = int(os.environ.get("FLAKY_EVERY", "0") or "0")

PRODUCTS = {
    1: {"id": 1, "name": "Thermal mug", "price": 18.5, "currency": "EUR"},
    2: {"id": 2, "name": "Walnut desk tray", "price": 32.0, "currency": "EUR"},
    3: {"id": 3, "name": "Reading lamp", "price": 49.9, "currency": "EUR"},
    4: {"id": 4, "name": "Linen notebook", "price": 9.75, "currency": "EUR"},
}


class Counter:
    """Product requests answered so far, shared by the server's threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._n = 0

    def next(self):
        with self._lock:
            self._n += 1
            return self._n


requests_seen = Counter()


def log(**fields):
    parts = [datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"), NAME]
    parts += [f"{k}={v}" for k, v in fields.items() if v not in (None, "")]
    print(" ".join(parts), flush=True)


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, so the sidecar can reuse its connections to the app.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs add 40 ms to each answer.
    disable_nagle_algorithm = True
    server_version = "shop-catalog"

    def send_json(self, status, body):
        data = (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        started = time.monotonic()
        if self.path == "/healthz":
            data = b"ok\n"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        status = self.answer()
        log(
            method="GET",
            path=self.path,
            status=status,
            ms=f"{(time.monotonic() - started) * 1000:.1f}",
            **{"end-user": self.headers.get("end-user"), "x-request-id": self.headers.get("x-request-id")},
        )

    def answer(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[0] != "products" or len(parts) > 2:
            self.send_json(404, {"error": "try GET /products or /products/ID"})
            return 404
        n = requests_seen.next()
        if FLAKY_EVERY > 0 and n % FLAKY_EVERY == 0:
            self.send_json(503, {"error": f"{NAME} is flaky: request {n} fails", "servedBy": NAME})
            return 503
        if len(parts) == 1:
            self.send_json(200, {"products": list(PRODUCTS.values()), "servedBy": NAME})
            return 200
        product = PRODUCTS.get(int(parts[1])) if parts[1].isdigit() else None
        if product is None:
            self.send_json(404, {"error": f"no product {parts[1]}"})
            return 404
        self.send_json(200, {**product, "servedBy": NAME})
        return 200

    def log_message(self, format, *args):
        # One line per request is written by do_GET; the default stderr line would be a second.
        pass


def main():
    port = int(os.environ.get("PORT", "9080"))
    # weft up sets HOST: 127.0.0.1 in explicit mode, 0.0.0.0 in transparent mode (the app's own namespace).
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(signum, _frame):
        log(event="stopping", signal=signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, so it cannot run on serve_forever's thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(event="listening", address=f"{host}:{server.server_address[1]}")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
