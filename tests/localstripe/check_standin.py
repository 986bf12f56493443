"""Checks the launcher's stand-in for Stripe.js without a browser: the script it serves and the
calls that script makes, against a launcher started for the purpose.

    python check_standin.py        (with the Python that runs launch.py)

Prints each check and exits non-zero at the first one that fails. Takes a few seconds (localstripe
sends its webhooks a second after the event).
"""

import hashlib
import hmac
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "sk_test_x"
PUBLISHABLE_KEY = "pk_test_x"
WEBHOOK_SECRET = "whsec_check"

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000002500003155"
CARD_3DS_OTHER = "4000002760003184"
CARD_3DS_DECLINED = "4000008260003178"


class Failed(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise Failed("%s%s" % (what, (": %s" % detail) if detail else ""))
    print("ok   " + what)


class Peer:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "launch.py"), "--parent", str(os.getpid())],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        prefix = "localstripe listening on "
        if not line.startswith(prefix):
            raise Failed("the launcher did not start: %r" % line)
        self.base = "http://127.0.0.1:%d" % int(line[len(prefix) :])

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def request(self, method, path, form=None, body=None, secret_key=True):
        """(status, headers, body): form is form-encoded, body sent as text like the script's."""
        data = None
        headers = {}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "text/plain;charset=UTF-8"
        if secret_key:
            headers["Authorization"] = "Bearer " + SECRET_KEY
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                status, got, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            status, got, raw = answer.code, answer.headers, answer.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return status, got, parsed

    def new_intent(self):
        status, _, intent = self.request(
            "POST", "/v1/payment_intents", form={"amount": "5000", "currency": "gbp"}
        )
        check(status == 200, "intent created", intent)
        return intent

    def intent(self, intent_id):
        status, _, intent = self.request("GET", "/v1/payment_intents/" + intent_id)
        if status != 200:
            raise Failed("intent %s: %s %s" % (intent_id, status, intent))
        return intent

    def confirm(self, intent, number, key=PUBLISHABLE_KEY, client_secret=None):
        body = {
            "key": key,
            "client_secret": client_secret or intent["client_secret"],
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
        return self.request(
            "POST",
            "/v1/payment_intents/%s/_confirm_with_card" % intent["id"],
            body=body,
            secret_key=False,
        )

    def authenticate(self, intent, success):
        return self.request(
            "POST",
            "/v1/payment_intents/%s/_authenticate?success=%s" % (intent["id"], success),
            body={"key": PUBLISHABLE_KEY, "client_secret": intent["client_secret"]},
            secret_key=False,
        )


def webhook_receiver():
    """A local endpoint that queues the (verified) events localstripe sends it."""
    events = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            payload = self.rfile.read(int(self.headers["Content-Length"]))
            parts = dict(p.split("=", 1) for p in self.headers["Stripe-Signature"].split(","))
            signed = parts["t"].encode() + b"." + payload
            expected = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, parts["v1"]):
                events.put(json.loads(payload))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, events


def expect_event(events, kind, intent_id):
    while True:
        try:
            event = events.get(timeout=10)
        except queue.Empty:
            raise Failed("no %s webhook for %s" % (kind, intent_id))
        obj = event["data"]["object"]
        if event["type"] == kind and obj["id"] == intent_id:
            check(True, "webhook %s for %s (signed)" % (kind, intent_id))
            return obj


def run(peer, events):
    status, headers, script = peer.request("GET", "/js.stripe.com/v3/", secret_key=False)
    check(status == 200, "GET /js.stripe.com/v3/ answers 200", status)
    check(
        headers.get("Content-Type", "").startswith("application/javascript"),
        "the script is served as application/javascript",
        headers.get("Content-Type"),
    )
    with open(os.path.join(HERE, "stripe-v3.js"), encoding="utf-8") as f:
        check(script == f.read(), "the script served is the stand-in, stripe-v3.js")
    check("confirmCardPayment" not in script, "localstripe's own library is not served")
    node = shutil.which("node")
    if node:
        checked = subprocess.run(
            [node, "--check", os.path.join(HERE, "stripe-v3.js")], capture_output=True, text=True
        )
        check(checked.returncode == 0, "node --check stripe-v3.js", checked.stderr)

    # Succeeds.
    intent = peer.new_intent()
    status, _, body = peer.confirm(intent, CARD_OK)
    check(status == 200 and body["status"] == "succeeded", "4242 4242 4242 4242 succeeds", body)
    check(peer.intent(intent["id"])["status"] == "succeeded", "the intent has succeeded")
    check(body["amount_received"] == 5000, "amount_received is the amount", body)
    expect_event(events, "payment_intent.succeeded", intent["id"])
    status, _, body = peer.confirm(intent, CARD_OK)
    check(
        status == 400 and body["error"]["code"] == "payment_intent_unexpected_state",
        "a succeeded intent cannot be confirmed again",
        body,
    )

    # Declined, then paid with another card.
    intent = peer.new_intent()
    status, _, body = peer.confirm(intent, CARD_DECLINED)
    error = body.get("error", {}) if isinstance(body, dict) else {}
    check(status == 402, "4000 0000 0000 0002 answers 402", (status, body))
    check(
        error.get("type") == "card_error" and error.get("code") == "card_declined",
        "... a card_error card_declined",
        error,
    )
    check(bool(error.get("message")), "... with a message", error)
    check(
        error.get("payment_intent", {}).get("status") == "requires_payment_method",
        "... carrying the intent",
        error,
    )
    again = peer.intent(intent["id"])
    check(
        again["status"] == "requires_payment_method",
        "the declined intent is back to requires_payment_method",
        again,
    )
    check(
        (again.get("last_payment_error") or {}).get("code") == "card_declined",
        "... its last_payment_error is card_declined",
        again,
    )
    failed = expect_event(events, "payment_intent.payment_failed", intent["id"])
    check(failed["status"] == "requires_payment_method", "... the event's intent is unpaid")
    status, _, body = peer.confirm(intent, CARD_OK)
    check(status == 200 and body["status"] == "succeeded", "the same intent then takes 4242", body)
    check(body["latest_charge"] != failed["latest_charge"], "... with a charge of its own", body)
    expect_event(events, "payment_intent.succeeded", intent["id"])

    # 3-D Secure, completed.
    intent = peer.new_intent()
    status, _, body = peer.confirm(intent, CARD_3DS)
    check(
        status == 200 and body["status"] == "requires_action",
        "4000 0025 0000 3155 requires action",
        body,
    )
    check(body.get("next_action") is not None, "... with a next_action", body)
    status, _, body = peer.authenticate(intent, "true")
    check(status == 200 and body["status"] == "succeeded", "... completed: succeeded", body)
    expect_event(events, "payment_intent.succeeded", intent["id"])

    # 3-D Secure, failed, then paid.
    intent = peer.new_intent()
    status, _, body = peer.confirm(intent, CARD_3DS_OTHER)
    check(
        status == 200 and body["status"] == "requires_action",
        "4000 0027 6000 3184 requires action",
        body,
    )
    status, _, body = peer.authenticate(intent, "false")
    check(
        status == 200
        and body["status"] == "requires_payment_method"
        and body["last_payment_error"]["code"] == "payment_intent_authentication_failure",
        "... failed: requires_payment_method, payment_intent_authentication_failure",
        body,
    )
    status, _, body = peer.confirm(intent, CARD_OK)
    check(status == 200 and body["status"] == "succeeded", "... then paid with 4242", body)

    # 3-D Secure, completed, then declined.
    intent = peer.new_intent()
    status, _, body = peer.confirm(intent, CARD_3DS_DECLINED)
    check(
        status == 200 and body["status"] == "requires_action",
        "4000 0082 6000 3178 requires action",
        body,
    )
    status, _, body = peer.authenticate(intent, "true")
    check(
        status == 402 and body["error"]["code"] == "card_declined",
        "... completed: declined (402 card_declined)",
        (status, body),
    )
    check(
        peer.intent(intent["id"])["status"] == "requires_payment_method",
        "... requires_payment_method",
    )

    # Authentication.
    intent = peer.new_intent()
    wrong = intent["client_secret"][:-1] + ("A" if intent["client_secret"][-1] != "A" else "B")
    for what, kwargs in (
        ("a wrong client secret", {"client_secret": wrong}),
        ("another intent's client secret", {"client_secret": peer.new_intent()["client_secret"]}),
        ("a secret key instead of a publishable one", {"key": SECRET_KEY}),
        ("no key", {"key": None}),
    ):
        status, _, body = peer.confirm(intent, CARD_OK, **kwargs)
        check(status == 401, "%s answers 401" % what, (status, body))
    status, _, body = peer.request(
        "POST",
        "/v1/payment_intents/%s/_confirm_with_card" % intent["id"],
        body={"key": PUBLISHABLE_KEY, "card": {"number": CARD_OK}},
        secret_key=False,
    )
    check(status == 401, "no client secret answers 401", (status, body))
    check(
        peer.intent(intent["id"])["status"] == "requires_payment_method", "... the intent untouched"
    )
    status, _, body = peer.request(
        "POST",
        "/v1/payment_intents/pi_doesnotexist/_confirm_with_card",
        body={"key": PUBLISHABLE_KEY, "client_secret": "pi_doesnotexist_secret_x"},
        secret_key=False,
    )
    check(status == 404, "an unknown intent answers 404", (status, body))

    # retrievePaymentIntent's call.
    path = "/v1/payment_intents/%s?" % intent["id"]
    query = {"key": PUBLISHABLE_KEY, "client_secret": intent["client_secret"]}
    status, _, body = peer.request("GET", path + urllib.parse.urlencode(query), secret_key=False)
    check(
        status == 200 and body["id"] == intent["id"],
        "the intent reads with its client secret",
        body,
    )
    query["client_secret"] = wrong
    status, _, body = peer.request("GET", path + urllib.parse.urlencode(query), secret_key=False)
    check(status == 401, "... not with a wrong one", (status, body))
    status, _, body = peer.request("GET", "/v1/payment_intents/" + intent["id"], secret_key=False)
    check(status == 401, "... nor with nothing", (status, body))

    # The REST API confirms as before, and declines 4000 0000 0000 0002 the same way.
    for number, expected in ((CARD_OK, 200), ("4000000000000341", 402), (CARD_DECLINED, 402)):
        intent = peer.new_intent()
        status, _, method = peer.request(
            "POST",
            "/v1/payment_methods",
            form={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        peer.request(
            "POST", "/v1/payment_intents/" + intent["id"], form={"payment_method": method["id"]}
        )
        status, _, body = peer.request(
            "POST", "/v1/payment_intents/%s/confirm" % intent["id"], form={}
        )
        check(
            status == expected,
            "REST confirm with %s answers %d" % (number, expected),
            (status, body),
        )


def main():
    httpd, events = webhook_receiver()
    peer = Peer()
    try:
        status, _, body = peer.request(
            "POST",
            "/_config/webhooks/check",
            form={
                "url": "http://127.0.0.1:%d/" % httpd.server_address[1],
                "secret": WEBHOOK_SECRET,
            },
        )
        check(status == 200, "webhook endpoint registered", body)
        run(peer, events)
    except Failed as failure:
        print("FAIL " + str(failure))
        return 1
    finally:
        peer.stop()
        httpd.shutdown()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
