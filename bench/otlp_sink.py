#!/usr/bin/env python3
"""A local OTLP/HTTP receiver for the benchmark: accepts every export
(/v1/traces, /v1/metrics), counts the bytes, answers an empty protobuf
response. Prints its port on the first line of stdout."""
import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        Sink.received += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
try:
    server.serve_forever()
finally:
    print(f"received {Sink.received} bytes", file=sys.stderr)
