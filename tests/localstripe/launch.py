"""Starts localstripe (PyPI) as the Stripe test peer of the integration tests.

    python launch.py --parent PID

It listens on a free loopback port, prints "localstripe listening on PORT" once it accepts
connections, and exits when the process PID (the test run) has gone. Two things differ from
`localstripe --from-scratch`:

- its state stays in memory: localstripe pickles every change to one fixed path under /tmp,
  which concurrent runs on one machine would share;
- its answers are completed to the shape of Stripe's current API, which the typed client of the
  service (async-stripe) reads: localstripe answers in the shape of 2017 and leaves out fields that
  Stripe now always sends. Values are derived from what localstripe has (amount_received is the
  amount once the payment succeeded), never made up.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys

import aiohttp
from aiohttp import web
from localstripe import resources, server, webhooks

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
    port = sock.getsockname()[1]
    app = server.app
    app["parent"] = args.parent
    app.on_startup.append(_on_startup)

    async def announce(app):
        print(f"localstripe listening on {port}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    sys.exit(main())
