"""Starts localstripe (PyPI) as the Stripe test peer of the integration tests.

    python launch.py --parent PID

It listens on a free loopback port, prints "localstripe listening on PORT" once it accepts
connections, and exits when the process PID (the test run) has gone. What differs from
`localstripe --from-scratch`:

- its state stays in memory: localstripe pickles every change to one fixed path under /tmp,
  which concurrent runs on one machine would share;
- its answers are completed to the shape of Stripe's current API, which the typed client of the
  service (async-stripe) reads: localstripe answers in the shape of 2017 and leaves out fields that
  Stripe now always sends. Values are derived from what localstripe has (amount_received is the
  amount once the payment succeeded), never made up;
- the cards that Stripe declines whenever they are charged (4000000000000002, its generic decline,
  and the other decline cards that localstripe only declines when attached to a customer) are
  declined when a payment is confirmed too, as 4000000000000341 already is;
- /js.stripe.com/v3/ serves stripe-v3.js beside this file, a stand-in for Stripe.js's Payment
  Element (`elements({clientSecret})`, `create('payment')`, `confirmPayment`,
  `retrievePaymentIntent`), instead of localstripe's own library, which has only the old Card
  Element and whose confirmCardPayment cannot pay an intent with a card;
- for that stand-in, two calls authenticated like a browser's, with the publishable key (`key`)
  and the intent's client secret (`client_secret`), a wrong or missing one answering 401:
  POST /v1/payment_intents/{id}/_confirm_with_card gives the intent a card (`card[number]`,
  `card[exp_month]`, `card[exp_year]`, `card[cvc]`) and confirms it through localstripe's model
  (the intent succeeds, requires_action for a 3-D Secure card, or is declined: HTTP 402 with a
  Stripe card_error, the intent back to requires_payment_method), and
  GET /v1/payment_intents/{id}?key=...&client_secret=... reads the intent.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import sys

import aiohttp
from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError

resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None


def _completed_intent(original):
    def export(self, expand=None):
        obj = original(self, expand=expand)
        succeeded = obj.get("status") == "succeeded"
        obj.setdefault("amount_capturable", 0)
        obj.setdefault("amount_received", obj.get("amount", 0) if succeeded else 0)
        obj.setdefault("confirmation_method", "automatic")
        obj.setdefault("payment_method_types", ["card"])
        # Stripe answers with the charge's id unless asked to expand it.
        charge = obj.get("latest_charge")
        if isinstance(charge, dict):
            obj["latest_charge"] = charge.get("id")
        obj.pop("charges", None)
        error = obj.get("last_payment_error")
        if isinstance(error, dict):
            error.setdefault("type", "card_error")
        return obj

    return export


def _completed_charge(original):
    def export(self, expand=None):
        obj = original(self, expand=expand)
        obj.setdefault("amount_captured", obj.get("amount", 0) if obj.get("captured") else 0)
        obj.setdefault("billing_details", {})
        obj.setdefault("disputed", False)
        return obj

    return export


def _completed_event(original):
    def export(self, expand=None):
        obj = original(self, expand=expand)
        obj.setdefault("pending_webhooks", 1)
        obj.setdefault("request", {"id": None, "idempotency_key": None})
        return obj

    return export


async def _deliver(event):
    """Like localstripe's own delivery (signed the same way, a second after the event), but to
    every endpoint at once and with a time limit, so one slow or dead endpoint (the servers of
    tests that ran before share this peer) never holds up the others."""
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
    signed = b"%d.%s" % (event.created, payload)
    await asyncio.sleep(1)

    async def one(endpoint):
        if endpoint.events is not None and event.type not in endpoint.events:
            return
        signature = hmac.new(endpoint.secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": "t=%d,v1=%s" % (event.created, signature),
        }
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(endpoint.url, data=payload, headers=headers) as answer:
                    await answer.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass

    await asyncio.gather(*(one(e) for e in list(webhooks._webhooks.values())))


webhooks._send_webhook = _deliver

resources.PaymentIntent._export = _completed_intent(resources.PaymentIntent._export)
resources.Charge._export = _completed_charge(resources.Charge._export)
resources.Event._export = _completed_event(resources.Event._export)


def _declined_when_charged(declined_at_charge):
    def declined(self):
        return declined_at_charge(self) or self._attaching_is_declined()

    return declined


resources.PaymentMethod._charging_is_declined = _declined_when_charged(
    resources.PaymentMethod._charging_is_declined
)

STANDIN_PATH = "/js.stripe.com/v3/"
STANDIN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stripe-v3.js")
CONFIRM_WITH_CARD = re.compile(r"^/v1/payment_intents/(pi_\w+)/_confirm_with_card$")
RETRIEVE_INTENT = re.compile(r"^/v1/payment_intents/(pi_\w+)$")
CARD_FIELDS = ("number", "exp_month", "exp_year", "cvc")


def _check_client_secret(intent_id, key, client_secret):
    """What Stripe asks of a browser: the publishable key and the intent's client secret."""
    if not (isinstance(key, str) and key.startswith("pk_") and len(key) > 3):
        raise UserError(401, "Unauthorized")
    intent = resources.PaymentIntent._api_retrieve(intent_id)
    if not (
        isinstance(client_secret, str)
        and hmac.compare_digest(client_secret.encode("utf-8"), intent.client_secret.encode("utf-8"))
    ):
        raise UserError(401, "Unauthorized")
    return intent


@web.middleware
async def _auth_middleware(request, handler):
    """localstripe's authentication, but the stand-in's calls authenticate with the publishable
    key and the intent's client secret."""
    if request.method == "POST":
        match = CONFIRM_WITH_CARD.match(request.path)
        if match:
            data = await server.get_post_data(request, remove_auth=False) or {}
            _check_client_secret(match.group(1), data.get("key"), data.get("client_secret"))
            return await handler(request)
    elif request.method == "GET" and "client_secret" in request.query:
        match = RETRIEVE_INTENT.match(request.path)
        if match:
            query = request.query
            _check_client_secret(match.group(1), query.get("key"), query.get("client_secret"))
            return await handler(request)
    return await server.auth_middleware(request, handler)


async def _confirm_with_card(request):
    """Gives the intent a new card PaymentMethod and confirms it, as Stripe.js's confirmPayment
    does with the card typed in the Payment Element (the client secret was checked before)."""
    data = await server.get_post_data(request, remove_auth=False) or {}
    card = data.get("card")
    if not isinstance(card, dict) or any(card.get(f) is None for f in CARD_FIELDS):
        raise UserError(400, "Bad request", {"code": "parameter_missing", "param": "card"})
    intent = resources.PaymentIntent._api_retrieve(request.match_info["id"])
    if intent.status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise UserError(
            400,
            "This PaymentIntent's status is %s: it cannot be confirmed." % intent.status,
            {"code": "payment_intent_unexpected_state", "payment_intent": intent._export()},
        )
    method = resources.PaymentMethod(type="card", card={f: str(card[f]) for f in CARD_FIELDS})
    # A new attempt: the charge of an earlier, failed one is kept as a charge of its own.
    intent.payment_method = method.id
    intent.next_action = None
    intent.latest_charge = None
    try:
        intent._confirm(on_failure_now=intent._report_failure)
    except UserError as declined:
        if declined.code != 402:
            raise
        error = dict(declined.body["error"])
        error["type"] = "card_error"
        error["payment_intent"] = intent._export()
        error["payment_method"] = method._export()
        return server.json_response({"error": error}, status=402)
    return server.json_response(intent._export())


async def _standin(request):
    with open(STANDIN_FILE, encoding="utf-8") as f:
        return web.Response(
            text=f.read(),
            content_type="application/javascript",
            headers={"Cache-Control": "no-store"},
        )


def _application():
    """localstripe's routes and middlewares, with the stand-in's routes and authentication."""
    app = web.Application(
        middlewares=[server.error_middleware, _auth_middleware, server.save_store_middleware]
    )
    app.on_response_prepare.append(server.add_cors_headers)
    app.router.add_post("/v1/payment_intents/{id}/_confirm_with_card", _confirm_with_card)
    app.router.add_get(STANDIN_PATH, _standin)
    for route in server.app.router.routes():
        if route.resource is None or route.resource.canonical == STANDIN_PATH:
            continue
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app


async def _watch(parent):
    while True:
        try:
            os.kill(parent, 0)
        except OSError:
            os._exit(0)
        await asyncio.sleep(1)


async def _on_startup(app):
    parent = app["parent"]
    if parent:
        app["watch"] = asyncio.ensure_future(_watch(parent))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening now, the connections made as soon as the port is announced (on startup, before
    # the server serves) wait in the backlog instead of being refused.
    sock.listen(128)
    port = sock.getsockname()[1]
    app = _application()
    app["parent"] = args.parent
    app.on_startup.append(_on_startup)

    async def announce(app):
        print(f"localstripe listening on {port}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    sys.exit(main())
