#!/usr/bin/env python3
"""The engine's calls to hvnode-vdsm made by an independent client, stomp.py.

Connects over TLS with a client certificate as oVirt Engine does (STOMP 1.2,
CONNECT with heart-beat 0,15000), subscribes to the answers' and the events'
destinations, and sends JSON-RPC requests to jms.topic.vdsm_requests with a
reply-to header: each of the engine's verbs to bring a host Up, one at a time,
then all of them in one batch array, and DISCONNECT with a receipt. A second
connection, subscribed to the answers only, asks for short heart-beats both
ways and stays idle for two intervals, then pings.

--parts runs one of the two alone. Prints one JSON object on stdout: the
CONNECTED headers, each request with its answer, the batch, the events
received, the receipts, the heart-beat figures, and the framing problems
found in the frames received (a MESSAGE's content-length that is not its
body's, a destination or subscription that is not the one asked for). Exits 1 with a message on stderr when there is no answer in time,
an ERROR frame, a lost connection or a framing problem; 77 when stomp.py is
not installed (the caller decides whether that is a skip).

    stomp_client.py --port PORT --ca CA.pem --cert CLIENT.pem --key CLIENT.key
"""

import argparse
import json
import queue
import sys
import threading
import time

try:
    import stomp
except ImportError as e:
    print(f"stomp_client: stomp.py is not installed ({e}); tests/deps.sh installs it", file=sys.stderr)
    sys.exit(77)

REQUESTS = "jms.topic.vdsm_requests"
RESPONSES = "jms.topic.vdsm_responses"
EVENTS = "jms.queue.events"
# The verbs the engine calls to bring a host Up in an empty cluster.
VERBS = [
    "Host.ping2",
    "Host.getCapabilities",
    "Host.getHardwareInfo",
    "Host.getStats",
    "Host.getAllVmStats",
]


class Failure(Exception):
    """What went wrong, said to the caller on stderr."""


class Collector(stomp.ConnectionListener):
    """Every frame the connection receives, in order, with the framing checks."""

    def __init__(self, subscriptions):
        # Subscription id -> destination.
        self.subscriptions = subscriptions
        self.answers = queue.Queue()
        self.events = []
        self.problems = []
        self.errors = []
        self.receipts = []
        self.connected = None
        self.server_beats = 0
        self.heartbeat_timeouts = 0
        self.lost = threading.Event()
        self.lock = threading.Lock()

    def on_connected(self, frame):
        self.connected = dict(frame.headers)

    def on_message(self, frame):
        headers = frame.headers
        body = frame.body if isinstance(frame.body, bytes) else frame.body.encode("utf-8")
        where = f"MESSAGE to {headers.get('destination')!r}"
        length = headers.get("content-length")
        if length is None:
            self.problem(f"{where} has no content-length")
        elif length != str(len(body)):
            self.problem(f"{where}: content-length {length}, body of {len(body)} bytes")
        if headers.get("content-type") != "application/json":
            self.problem(f"{where}: content-type {headers.get('content-type')!r}")
        subscription = headers.get("subscription")
        if self.subscriptions.get(subscription) != headers.get("destination"):
            self.problem(f"{where}: subscription {subscription!r}, not one made for it")
        try:
            value = json.loads(body)
        except ValueError as e:
            self.problem(f"{where}: the body is not JSON ({e}): {body[:200]!r}")
            return
        if headers.get("destination") == EVENTS:
            with self.lock:
                self.events.append(value)
        else:
            self.answers.put(value)

    def on_error(self, frame):
        message = frame.headers.get("message", frame.body)
        self.errors.append(message)
        self.answers.put(Failure(f"the service sent ERROR: {message}"))

    def on_receipt(self, frame):
        self.receipts.append(frame.headers.get("receipt-id"))

    def on_heartbeat(self):
        self.server_beats += 1

    def on_heartbeat_timeout(self):
        self.heartbeat_timeouts += 1

    def on_disconnected(self):
        self.lost.set()
        self.answers.put(Failure("the connection was closed"))

    def problem(self, text):
        with self.lock:
            self.problems.append(text)


def open_connection(args, heartbeats, name, events=True):
    """A connected connection subscribed to the answers (and the events), and its
    collector."""
    host = (args.host, args.port)
    conn = stomp.Connection12(
        host_and_ports=[host],
        heartbeats=heartbeats,
        reconnect_attempts_max=1,
        timeout=args.timeout,
    )
    conn.set_ssl(
        for_hosts=[host],
        key_file=args.key,
        cert_file=args.cert,
        ca_certs=args.ca,
    )
    subscriptions = {f"{name}-responses": RESPONSES}
    if events:
        subscriptions[f"{name}-events"] = EVENTS
    collector = Collector(subscriptions)
    conn.set_listener("collector", collector)
    try:
        # CONNECT, as the engine's client sends it (stomp.py sends STOMP otherwise).
        conn.connect(wait=True, with_connect_command=True)
    except Exception as e:
        raise Failure(f"connecting to {args.host}:{args.port} over TLS ({type(e).__name__}: {e})") from e
    if collector.connected is None:
        raise Failure(f"no CONNECTED from {args.host}:{args.port}")
    for sub_id, destination in subscriptions.items():
        conn.subscribe(destination=destination, id=sub_id, ack="auto")
    return conn, collector


def send(conn, request, flow):
    conn.send(
        destination=REQUESTS,
        body=json.dumps(request),
        content_type="application/json",
        headers={"reply-to": RESPONSES, "ovirtCorrelationId": flow},
    )


def await_answer(collector, what, timeout):
    """The next answer on the responses' destination, within `timeout` s."""
    try:
        answer = collector.answers.get(timeout=timeout)
    except queue.Empty:
        raise Failure(f"no answer to {what} on {RESPONSES} within {timeout} s") from None
    if isinstance(answer, Failure):
        raise Failure(f"waiting for the answer to {what}: {answer}")
    return answer


def request(method, id_):
    return {"jsonrpc": "2.0", "method": method, "params": {}, "id": id_}


def engine_calls(args):
    """The engine's connection: each verb alone, then a batch, then DISCONNECT."""
    conn, collector = open_connection(args, (0, 15000), "engine")
    calls = []
    for i, method in enumerate(VERBS):
        req = request(method, f"single-{i}")
        started = time.monotonic()
        send(conn, req, f"flow-{i}")
        answer = await_answer(collector, f"{method} (id {req['id']})", args.timeout)
        calls.append({"request": req, "answer": answer, "ms": round((time.monotonic() - started) * 1000, 1)})
    batch = [request(method, f"batch-{i}") for i, method in enumerate(VERBS)]
    send(conn, batch, "flow-batch")
    batch_answer = await_answer(collector, f"the batch of {len(batch)}", args.timeout)
    # Events come every few hundred ms when the caller sends them.
    deadline = time.monotonic() + args.event_wait
    while args.event_wait and not collector.events and time.monotonic() < deadline:
        time.sleep(0.05)
    conn.disconnect(receipt="goodbye")
    collector.lost.wait(args.timeout)
    return {
        "connected": collector.connected,
        "calls": calls,
        "batch": {"request": batch, "answer": batch_answer},
        "events": collector.events[:3],
        "receipts": collector.receipts,
        "errors": collector.errors,
        "problems": collector.problems,
    }


def heart_beats(args):
    """A connection with short heart-beats both ways, idle for two intervals (no
    events: the service's heart-beats are what it writes to an idle link)."""
    ms = args.beat_ms
    conn, collector = open_connection(args, (ms, ms), "beats", events=False)
    idle = 2.25 * ms / 1000
    time.sleep(idle)
    if collector.heartbeat_timeouts:
        raise Failure(
            f"no heart-beat from the service within {1.5 * ms / 1000} s (heart-beats {ms},{ms}): "
            "stomp.py dropped the connection"
        )
    if collector.lost.is_set():
        raise Failure(f"the service closed the connection while it was idle with heart-beats {ms},{ms}")
    req = request("Host.ping2", "after-idle")
    send(conn, req, "flow-beats")
    answer = await_answer(collector, f"Host.ping2 after {idle} s idle", args.timeout)
    conn.disconnect(receipt="goodbye-beats")
    collector.lost.wait(args.timeout)
    return {
        "asked": f"{ms},{ms}",
        "connected": collector.connected,
        "idle_s": idle,
        "server_beats": collector.server_beats,
        "heartbeat_timeouts": collector.heartbeat_timeouts,
        "answer_after_idle": answer,
        "errors": collector.errors,
        "problems": collector.problems,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost", help="the service's name, as its certificate gives it")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="the engine's CA certificate (PEM)")
    parser.add_argument("--cert", required=True, help="the client's certificate (PEM), of that CA")
    parser.add_argument("--key", required=True, help="the client's key (PEM)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one answer")
    parser.add_argument("--beat-ms", type=int, default=1000, help="heart-beat interval of the second connection")
    parser.add_argument("--event-wait", type=float, default=0.0, help="seconds to wait for an event")
    parser.add_argument(
        "--parts",
        default="engine,heart_beats",
        help="what to run, comma-separated: engine (the calls), heart_beats (the idle connection)",
    )
    args = parser.parse_args()
    parts = {"engine": engine_calls, "heart_beats": heart_beats}
    summary = {"client": f"stomp.py {stomp.__version__}"}
    try:
        for part in args.parts.split(","):
            if part not in parts:
                raise Failure(f"--parts: no part {part!r} (there are {', '.join(parts)})")
            summary[part] = parts[part](args)
    except Failure as e:
        print(f"stomp_client: {e}", file=sys.stderr)
        return 1
    json.dump(summary, sys.stdout, indent=1, sort_keys=True)
    print()
    problems = [p for part in parts if part in summary for p in summary[part]["problems"]]
    if problems:
        print("stomp_client: framing problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
