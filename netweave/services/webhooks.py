"""Webhooks: a CRM registers a URL and the events it wants; Netweave sends each event there,
signed per the Standard Webhooks specification (the `standardwebhooks` library: `webhook-id`,
`webhook-timestamp`, `webhook-signature`, a secret per subscription).

Deliveries are an outbox: written in the transaction of the change they tell of, then sent
by the worker (a job per delivery), retried with growing waits (`retry_seconds`) until the
receiver answers 2xx or the attempts run out, and kept in a log that shows why one failed
and lets it be replayed. A delivery keeps its id on every attempt, so receivers can drop a
repeat.

A target on loopback, a private or link-local network, or any address that is not public is
refused, at registration and again before every attempt (its name may resolve elsewhere
later), unless the allowlist setting names its host.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from graph import GraphStore
from graph.records import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from netweave.jobs import JobQueue
from netweave.services.access import NotFound, Viewer

log = logging.getLogger(__name__)

USER_AGENT = "Netweave-Webhooks/1"


@dataclass(frozen=True)
class Policy:
    """How deliveries are made: the hosts allowed although not public, the waits between
    attempts (one fewer than the attempts), and how long a receiver may take."""

    allowlist: frozenset[str] = frozenset()
    retry_seconds: tuple[float, ...] = (10, 60, 300, 1800, 7200)
    timeout_seconds: float = 10.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Policy:
        allowed = frozenset(h.strip().lower() for h in str(config.get("WEBHOOK_ALLOWLIST", "")).split(",") if h.strip())
        waits = tuple(float(s) for s in str(config.get("WEBHOOK_RETRY_SECONDS", "")).split(",") if s.strip())
        timeout = float(config.get("WEBHOOK_TIMEOUT_SECONDS", 10))
        return cls(allowed, waits or cls.retry_seconds, timeout)

    @property
    def attempts(self) -> int:
        return len(self.retry_seconds) + 1


def check_target(url: str, allowlist: Collection[str]) -> None:
    """Raise ValueError (naming the field) unless `url` is an http(s) URL whose host resolves
    to public addresses only, or is allowlisted (by host name, address, or host:port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url: give an http or https URL with a host")
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in allowlist or f"{host}:{port}" in allowlist:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror:
        raise ValueError(f"url: the host {host!r} does not resolve") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise ValueError(
                f"url: {host!r} is a loopback, private or otherwise non-public address ({ip});"
                " allow it with NETWEAVE_WEBHOOK_ALLOWLIST"
            )


def _owned_scope(viewer: Viewer) -> str | None:
    """Whose book's events a viewer's subscription gets: theirs, or every book's (None)."""
    return None if viewer.sees_every_book else viewer.salesperson_id


def subscribe(
    store: GraphStore,
    viewer: Viewer,
    url: str,
    events: Sequence[WebhookEvent],
    policy: Policy,
    description: str = "",
    now: datetime | None = None,
) -> WebhookSubscription:
    """A new subscription; its secret (`whsec_...`) is in the answer, for the receiver to verify with."""
    check_target(url, policy.allowlist)
    if not events:
        raise ValueError("events: give at least one of " + ", ".join(e.value for e in WebhookEvent))
    subscription = WebhookSubscription(
        id=uuid.uuid4().hex,
        url=url,
        events=tuple(dict.fromkeys(events)),
        secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        created_at=now or datetime.now(UTC),
        created_by=viewer.label,
        salesperson_id=_owned_scope(viewer),
        description=description.strip(),
    )
    store.write(lambda tx: tx.create_webhook(subscription))
    return subscription


def subscription_for(store: GraphStore, viewer: Viewer, webhook_id: str) -> WebhookSubscription:
    """The viewer's subscription (every one, for one who sees every book); NotFound otherwise."""
    found = store.get_webhook(webhook_id)
    if found is None or found.disabled_at is not None or not _mine(viewer, found):
        raise NotFound(f"no webhook {webhook_id!r}")
    return found


def _mine(viewer: Viewer, subscription: WebhookSubscription) -> bool:
    return viewer.sees_every_book or subscription.salesperson_id == viewer.salesperson_id


def list_subscriptions(store: GraphStore, viewer: Viewer) -> list[WebhookSubscription]:
    return [s for s in store.list_webhooks() if _mine(viewer, s)]


def unsubscribe(store: GraphStore, viewer: Viewer, webhook_id: str, now: datetime | None = None) -> None:
    """Stop sending to it; its delivery log stays."""
    subscription_for(store, viewer, webhook_id)
    store.write(lambda tx: tx.disable_webhook(webhook_id, now or datetime.now(UTC)))


def deliveries(
    store: GraphStore, viewer: Viewer, webhook_id: str, status: DeliveryStatus | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    subscription_for(store, viewer, webhook_id)
    return store.list_deliveries(subscription_id=webhook_id, status=status, limit=limit)


def replay(
    store: GraphStore, viewer: Viewer, webhook_id: str, delivery_id: str, now: datetime | None = None
) -> WebhookDelivery:
    """Send a delivery again (a failed one, or any: receivers drop repeats by its id) with
    its attempts counted afresh; the caller queues it."""
    subscription_for(store, viewer, webhook_id)
    found = store.get_delivery(delivery_id)
    if found is None or found.subscription_id != webhook_id:
        raise NotFound(f"no delivery {delivery_id!r} of webhook {webhook_id!r}")
    again = replace(found, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now or datetime.now(UTC))
    store.write(lambda tx: tx.update_delivery(again))
    return again


def outbox(
    subscriptions: Sequence[WebhookSubscription],
    event: WebhookEvent,
    data: dict[str, Any],
    salesperson_ids: Collection[str] | None,
    now: datetime,
) -> list[WebhookDelivery]:
    """The deliveries of an event, to write in the transaction of its change: one per active
    subscription that wants the event and whose book it concerns (`salesperson_ids` None: every book's)."""
    body = json.dumps({"type": event.value, "timestamp": now.isoformat(), "data": data}, sort_keys=True)
    return [
        WebhookDelivery("msg_" + uuid.uuid4().hex, s.id, event, body, now, next_attempt_at=now)
        for s in subscriptions
        if s.disabled_at is None
        and event in s.events
        and (s.salesperson_id is None or salesperson_ids is None or s.salesperson_id in salesperson_ids)
    ]


NEW_SHOWN = 50  # new suggestions listed in one suggestions.new event (the count has them all)


def new_suggestions(
    store: GraphStore, subscriptions: Sequence[WebhookSubscription], generation: int, now: datetime
) -> list[WebhookDelivery]:
    """suggestions.new deliveries for a published generation: for each salesperson whose book's
    lists gained pairs, the new ones (by business, then rank)."""
    new = store.new_in_generation(generation)
    owners = {b.id: b.record.salesperson_id for b in store.get_businesses(sorted({a for a, *_ in new})).values()}
    by_salesperson: dict[str, list[dict[str, Any]]] = {}
    for business_id, other_id, rank, score in new:
        if business_id in owners:
            item = {"business_id": business_id, "other_id": other_id, "rank": rank, "score": round(score, 4)}
            by_salesperson.setdefault(owners[business_id], []).append(item)
    pending = []
    for salesperson, items in sorted(by_salesperson.items()):
        data = {"salesperson": salesperson, "generation": generation, "count": len(items),
                "suggestions": items[:NEW_SHOWN]}  # fmt: skip
        pending += outbox(subscriptions, WebhookEvent.SUGGESTIONS_NEW, data, {salesperson}, now)
    return pending


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new target: following it could reach a refused address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def deliver(store: GraphStore, delivery_id: str, policy: Policy, now: datetime | None = None) -> WebhookDelivery:
    """One attempt at a pending delivery; returns it as recorded after (pending again with its
    next attempt's time, delivered, or failed for good)."""
    delivery = store.get_delivery(delivery_id)
    if delivery is None or delivery.status is not DeliveryStatus.PENDING:
        raise NotFound(f"no pending delivery {delivery_id!r}")
    at = now or datetime.now(UTC)
    subscription = store.get_webhook(delivery.subscription_id)
    status, error = None, ""
    if subscription is None or subscription.disabled_at is not None:
        error = "the webhook was removed"
    else:
        try:
            check_target(subscription.url, policy.allowlist)
            status = _post(subscription, delivery, policy, at)
            if not 200 <= status < 300:
                error = f"the receiver answered HTTP {status}"
        except ValueError as refused:
            error = str(refused)
        except (OSError, urllib.error.URLError) as failed:
            error = f"could not reach the receiver: {getattr(failed, 'reason', failed)}"
    attempts = delivery.attempts + 1
    if not error:
        outcome, next_at = DeliveryStatus.DELIVERED, None
    elif subscription is None or subscription.disabled_at is not None or attempts >= policy.attempts:
        outcome, next_at = DeliveryStatus.FAILED, None
    else:
        outcome, next_at = DeliveryStatus.PENDING, at + timedelta(seconds=policy.retry_seconds[attempts - 1])
    recorded = replace(
        delivery, status=outcome, attempts=attempts, next_attempt_at=next_at, last_attempt_at=at,
        last_status=status, last_error=error,
    )  # fmt: skip
    store.write(lambda tx: tx.update_delivery(recorded))
    return recorded


def _post(subscription: WebhookSubscription, delivery: WebhookDelivery, policy: Policy, at: datetime) -> int:
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(subscription.secret).sign(delivery.id, at, body),
    }
    request = urllib.request.Request(subscription.url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=policy.timeout_seconds) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:  # a 3xx, 4xx or 5xx is an answer all the same
        return answer.code


def send_soon(jobs: JobQueue, pending: Sequence[WebhookDelivery]) -> None:
    """After the change committed: queue its deliveries. If the queue cannot be reached they
    wait in the store, pending, and the worker's sweep sends them."""
    if not pending:
        return
    try:
        jobs.send_deliveries([d.id for d in pending])
    except Exception:
        log.warning("could not queue %d webhook deliveries; the sweep will send them", len(pending), exc_info=True)
