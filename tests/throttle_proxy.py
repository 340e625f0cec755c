#!/usr/bin/env python3
"""A DynamoDB proxy on 127.0.0.1 that throttles Scan: for the integration tests only.

    throttle_proxy.py LISTEN_PORT UPSTREAM_URL THROTTLED_SCANS

Forwards every request to UPSTREAM_URL unchanged, except that the first THROTTLED_SCANS Scan
requests are answered with ProvisionedThroughputExceededException, as DynamoDB answers a
reader over its capacity. Prints "ready" once listening. Standard library only.
"""

import http.client
import http.server
import json
import sys
import threading
import urllib.parse


def main():
    port, upstream, budget = int(sys.argv[1]), urllib.parse.urlparse(sys.argv[2]), int(sys.argv[3])
    lock = threading.Lock()
    state = {"throttled": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("X-Amz-Target", "").endswith(".Scan"):
                with lock:
                    throttle = state["throttled"] < budget
                    if throttle:
                        state["throttled"] += 1
                if throttle:
                    error = json.dumps({
                        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                        "message": "The level of configured provisioned throughput for the table was exceeded.",
                    }).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request("POST", self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            connection.close()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
