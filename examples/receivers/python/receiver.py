"""A minimal webhook receiver in Python, verifying with the `standardwebhooks` library.

It verifies the Standard Webhooks signature (the library also refuses a timestamp more than
5 minutes away) and, when the request carries it, Logto's `logto-signature-sha-256`; it
answers a repeated `webhook-id` 200 without doing the work again, and answers at once.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... PORT=8080 python receiver.py

PORT=0 picks a free port; the bound port is printed as `listening on PORT`.
BROKEN=no-verify or BROKEN=dup-error breaks it on purpose, for the receiver check's tests.
"""

import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
BROKEN = os.environ.get("BROKEN", "")
MAX_BODY = 1024 * 1024
webhook = Webhook(SECRET)
seen = set()
seen_lock = threading.Lock()


def logto_valid(signature, body):
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


class Receiver(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return self.answer(413, {"error": "body too large"})
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if BROKEN != "no-verify":
            try:
                webhook.verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):
                return self.answer(401, {"error": "invalid signature"})
            logto = headers.get("logto-signature-sha-256")
            if logto is not None and not logto_valid(logto, body):
                return self.answer(401, {"error": "invalid signature"})
        try:
            event = json.loads(body)
        except ValueError:
            return self.answer(400, {"error": "not JSON"})
        msg_id = headers.get("webhook-id", "")
        with seen_lock:
            repeat = msg_id in seen
            seen.add(msg_id)
        if repeat:
            if BROKEN == "dup-error":
                return self.answer(409, {"error": "already received"})
            return self.answer(200, {"duplicate": True})
        self.answer(200, {"received": True})
        # The work (event["event"], event["hookId"], ...) happens here, after answering.
        del event

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when several deliveries arrive at once.
    request_queue_size = 128
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
