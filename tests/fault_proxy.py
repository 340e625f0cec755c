#!/usr/bin/env python3
"""An HTTP/1.1 reverse proxy on 127.0.0.1 that injects faults: for the integration tests only.

    fault_proxy.py --port P --upstream URL [--seed N]
                   [--throttle R] [--error500 R] [--drop R] [--slow R] [--slow-ms MS]
                   [--hang R] [--hang-ms MS] [--lose R]
                   [--only all|dynamodb|scan|s3|s3-put] [--dynamodb-ops Scan,DescribeTable]
                   [--path-contains TEXT] [--method M] [--always]
                   [--error-response STATUS:CODE] [--empty-records R]

Forwards every request (any method, the body read by Content-Length or chunked) to URL with its
headers unchanged, Host included: SigV4 signs the Host header and s3s-fs checks signatures, so
the upstream sees exactly what the client signed. Each request the filter selects gets, at
random from a seeded generator, at most one fault, with these probabilities:

  throttle  DynamoDB (a request with X-Amz-Target): 400 ProvisionedThroughputExceededException;
            S3: 503 SlowDown.
  error500  DynamoDB: 500 InternalServerError; S3: 500 InternalError.
  drop      the request is read, then the connection is closed without a response.
  slow      the request is forwarded, and the response held back --slow-ms (300) first.
  hang      the request is read and left unanswered for --hang-ms (120000), then dropped.
  lose      the request is forwarded (the upstream acts on it), then the connection is closed
            without a response: a retry repeats a request that already succeeded.

Which requests may get a fault: DynamoDB requests whose operation is in --dynamodb-ops (Scan by
default; DescribeTable may be added), and every S3 request. --only narrows that to DynamoDB,
Scan, S3 or S3 PUT requests (PutObject, UploadPart); --path-contains to requests whose path
(S3: /bucket/key?query) contains TEXT, e.g. "/data/" for data files or "uploadId" for parts;
--method to requests of one HTTP method.
--empty-records R answers that share of DynamoDB Streams GetRecords calls itself with no records
and the same iterator as the next one: the empty pages AWS may return before a shard's records
("it might take multiple calls"), without moving on. Counted as "empty_records".
--error-response STATUS:CODE makes error500 answer that status and error code instead (e.g.
403:AccessDenied for S3, 400:ExpiredTokenException for DynamoDB), to test how errors are told.
With --always every selected request gets a fault, the kind drawn in proportion to the rates
(error500 when all are 0): a persistent outage.

Prints "ready" once listening. `GET /__faults` (never forwarded, never faulted) answers the
counts so far as JSON: {"requests", "selected", "forwarded", "throttle", "error500", "drop",
"slow", "hang", "lose", "by_operation": {"Scan": {"throttle": 2, ...}, "s3:UploadPart": {...}}};
SIGTERM prints the same JSON on stdout and exits. Standard library only.
"""

import argparse
import http.client
import http.server
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse

KINDS = ("throttle", "error500", "drop", "slow", "hang", "lose")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="HTTP reverse proxy that injects faults (tests only)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=0)
    for kind in KINDS:
        parser.add_argument(f"--{kind}", type=float, default=0.0, metavar="RATE")
    parser.add_argument("--slow-ms", type=int, default=300)
    parser.add_argument("--hang-ms", type=int, default=120_000)
    parser.add_argument("--only", choices=("all", "dynamodb", "scan", "s3", "s3-put"), default="all")
    parser.add_argument("--dynamodb-ops", default="Scan", help="DynamoDB operations that may fail, comma-separated")
    parser.add_argument("--path-contains", default="", help="only requests whose path contains this")
    parser.add_argument("--method", default="", help="only requests of this HTTP method")
    parser.add_argument("--always", action="store_true", help="every selected request fails")
    parser.add_argument("--error-response", default="", metavar="STATUS:CODE", help="what error500 answers")
    parser.add_argument("--empty-records", type=float, default=0.0, metavar="RATE", help="empty GetRecords pages")
    args = parser.parse_args(argv)
    if args.error_response:
        status, _, code = args.error_response.partition(":")
        if not status.isdigit() or not code:
            parser.error("--error-response is STATUS:CODE, e.g. 403:AccessDenied")
        args.error_response = (int(status), code)
    rates = [getattr(args, kind) for kind in KINDS]
    if any(r < 0 or r > 1 for r in rates):
        parser.error("rates are probabilities between 0 and 1")
    if not args.always and sum(rates) > 1:
        parser.error("the rates add up to more than 1")
    return args


class Faults:
    """Picks faults (seeded, under a lock so concurrent requests draw in turn) and counts them."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.dynamodb_ops = {op.strip() for op in args.dynamodb_ops.split(",") if op.strip()}
        self.counts = {"requests": 0, "selected": 0, "forwarded": 0, "empty_records": 0, **{kind: 0 for kind in KINDS}}
        self.by_operation = {}

    def selected(self, operation, method, path):
        """Whether a request may get a fault. `operation` is the DynamoDB operation, or None for S3."""
        only = self.args.only
        if self.args.path_contains not in path:
            return False
        if self.args.method and method.upper() != self.args.method.upper():
            return False
        if operation is not None:
            return operation in self.dynamodb_ops and (
                only in ("all", "dynamodb") or (only == "scan" and operation == "Scan")
            )
        return only in ("all", "s3") or (only == "s3-put" and method == "PUT")

    def pick(self, operation, method, path, label):
        """The fault for one request (None: forward it unchanged), counted."""
        with self.lock:
            self.counts["requests"] += 1
            kind = None
            if self.selected(operation, method, path):
                self.counts["selected"] += 1
                kind = self.draw()
            if kind is not None:
                self.counts[kind] += 1
                per_op = self.by_operation.setdefault(label, {})
                per_op[kind] = per_op.get(kind, 0) + 1
            return kind

    def draw(self):
        """One fault kind at the configured rates, or None. Called under the lock."""
        rates = [getattr(self.args, kind) for kind in KINDS]
        if self.args.always:
            if sum(rates) == 0:
                return "error500"
            # Every request fails: the kind in proportion to the rates.
            point = self.rng.random() * sum(rates)
            fallback = [kind for kind, rate in zip(KINDS, rates) if rate > 0][-1]
        else:
            point = self.rng.random()
            fallback = None
        total = 0.0
        for kind, rate in zip(KINDS, rates):
            total += rate
            if point < total:
                return kind
        return fallback

    def empty_page(self):
        """Whether to answer this GetRecords with an empty page (at --empty-records), counted."""
        with self.lock:
            empty = self.args.empty_records > 0 and self.rng.random() < self.args.empty_records
            if empty:
                self.counts["empty_records"] += 1
            return empty

    def forwarded(self):
        with self.lock:
            self.counts["forwarded"] += 1

    def report(self):
        with self.lock:
            return json.dumps({**self.counts, "by_operation": self.by_operation}, sort_keys=True)


def s3_operation(method, path):
    """The S3 operation a path-style request is, for the counts (a guess from method and query)."""
    parts = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    has_key = "/" in parts.path.strip("/")
    if method == "PUT":
        if "uploadId" in query:
            return "UploadPart"
        return "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "DeleteObjects" if "delete" in query else "PostObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "GET":
        if has_key:
            return "ListParts" if "uploadId" in query else "GetObject"
        return "ListMultipartUploads" if "uploads" in query else "ListObjects"
    return method


def dynamodb_error(kind, custom=None):
    if custom:
        status, code = custom
        return status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"{code} (injected by fault_proxy.py)"}
    if kind == "throttle":
        return 400, {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    return 500, {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error (injected by fault_proxy.py)",
    }


def s3_error(kind, path, custom=None):
    if kind == "error500" and custom:
        (status, code), message = custom, custom[1]
    elif kind == "throttle":
        status, code, message = 503, "SlowDown", "Please reduce your request rate."
    else:
        status, code, message = 500, "InternalError", "We encountered an internal error. Please try again."
    resource = urllib.parse.urlsplit(path).path
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message} (injected by fault_proxy.py)</Message>"
        f"<Resource>{resource}</Resource><RequestId>fault-proxy</RequestId></Error>"
    )
    return status, body


def main(argv):
    args = parse_args(argv)
    upstream = urllib.parse.urlparse(args.upstream)
    faults = Faults(args)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks), True
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0))), False

        def handle_any(self):
            if self.command == "GET" and self.path == "/__faults":
                self.reply(200, "application/json", faults.report().encode())
                return
            body, was_chunked = self.read_body()
            target = self.headers.get("X-Amz-Target")
            operation = target.rsplit(".", 1)[-1] if target else None
            label = operation if operation is not None else f"s3:{s3_operation(self.command, self.path)}"
            if operation == "GetRecords" and faults.empty_page():
                iterator = json.loads(body or b"{}").get("ShardIterator")
                page = json.dumps({"Records": [], "NextShardIterator": iterator}).encode()
                self.reply(200, "application/x-amz-json-1.0", page)
                return
            kind = faults.pick(operation, self.command, self.path, label)
            if kind in ("throttle", "error500"):
                if operation is not None:
                    status, error = dynamodb_error(kind, args.error_response if kind == "error500" else None)
                    self.reply(status, "application/x-amz-json-1.0", json.dumps(error).encode())
                else:
                    status, error = s3_error(kind, self.path, args.error_response)
                    self.reply(status, "application/xml", error.encode())
                return
            if kind == "drop":
                self.drop()
                return
            if kind == "hang":
                time.sleep(args.hang_ms / 1000)
                self.drop()
                return
            delay = args.slow_ms / 1000 if kind == "slow" else 0
            self.forward(body, was_chunked, delay=delay, lose=kind == "lose")

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = handle_any

        def reply(self, status, content_type, payload):
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def drop(self):
            """Ends the connection without a response: the client sees EOF."""
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def forward(self, body, was_chunked, delay, lose):
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            if was_chunked:
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            try:
                # The client's own Host header goes along (http.client adds none when one is given).
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    connection.putheader(key, value)
                connection.endheaders(body or None)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                self.drop()
                return
            connection.close()
            faults.forwarded()
            if lose:
                self.drop()
                return
            if delay:
                time.sleep(delay)
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            length = response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(payload))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", args.port), Handler)

    def on_term(*_):
        print(faults.report(), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
