"""Webhooks: register a URL for events, read the delivery log, replay a delivery."""

from __future__ import annotations

import json

from flask import current_app, url_for

from graph.records import DeliveryStatus, TokenScope, WebhookDelivery, WebhookEvent, WebhookSubscription
from netweave.jobs import get_jobs
from netweave.services import webhooks
from netweave.store import get_store
from netweave.web.api import bp, caller, requires, responses, spec
from netweave.web.api.schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    IdempotentHeaders,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
)

TAG = "webhooks"


def _out(subscription: WebhookSubscription) -> dict:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": [e.value for e in subscription.events],
        "description": subscription.description,
        "scope": subscription.salesperson_id or "every book",
        "created_at": subscription.created_at,
        "created_by": subscription.created_by,
    }


def _delivery(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id, event=delivery.event.value, status=delivery.status.value, attempts=delivery.attempts,
        created_at=delivery.created_at, next_attempt_at=delivery.next_attempt_at,
        last_attempt_at=delivery.last_attempt_at, last_status=delivery.last_status, last_error=delivery.last_error,
        payload=json.loads(delivery.payload),
    )  # fmt: skip


@bp.post("/webhooks")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_201": WebhookCreated}, 400, 415, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="createWebhook")  # fmt: skip
def create_webhook(json: WebhookIn) -> tuple[WebhookCreated, int, dict[str, str]]:
    """Send these events to this URL, signed (Standard Webhooks); the secret is shown once."""
    policy = webhooks.Policy.from_config(current_app.config)
    events = [WebhookEvent(e) for e in json.events]
    made = webhooks.subscribe(get_store(), caller().viewer, json.url, events, policy, json.description)
    body = WebhookCreated(**_out(made), secret=made.secret)
    return body, 201, {"Location": url_for("api.get_webhook", webhook_id=made.id)}


@bp.get("/webhooks")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": WebhookList}), tags=[TAG], operation_id="listWebhooks")
def list_webhooks() -> WebhookList:
    """The webhooks this token's owner registered (every one, for a manager or an integration)."""
    found = webhooks.list_subscriptions(get_store(), caller().viewer)
    return WebhookList(items=[WebhookOut(**_out(s)) for s in found])


@bp.get("/webhooks/<webhook_id>")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": WebhookOut}, 404), tags=[TAG], operation_id="getWebhook")
def get_webhook(webhook_id: str) -> WebhookOut:
    """One webhook (never its secret)."""
    return WebhookOut(**_out(webhooks.subscription_for(get_store(), caller().viewer, webhook_id)))


@bp.delete("/webhooks/<webhook_id>")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": WebhookOut}, 404), tags=[TAG], operation_id="deleteWebhook")
def delete_webhook(webhook_id: str) -> WebhookOut:
    """Stop sending to it; its delivery log stays readable to operators."""
    subscription = webhooks.subscription_for(get_store(), caller().viewer, webhook_id)
    webhooks.unsubscribe(get_store(), caller().viewer, webhook_id)
    return WebhookOut(**_out(subscription))


@bp.get("/webhooks/<webhook_id>/deliveries")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": DeliveryList}, 404, 422), tags=[TAG], operation_id="listDeliveries")
def list_deliveries(webhook_id: str, query: DeliveryQuery) -> DeliveryList:
    """The delivery log, newest first: what was sent, how often, and why one failed."""
    status = DeliveryStatus(query.status) if query.status else None
    found = webhooks.deliveries(get_store(), caller().viewer, webhook_id, status, query.limit)
    return DeliveryList(items=[_delivery(d) for d in found])


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/replay")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_202": DeliveryOut}, 404, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="replayDelivery")  # fmt: skip
def replay_delivery(webhook_id: str, delivery_id: str) -> tuple[DeliveryOut, int]:
    """Send a delivery again (with the same id, so the receiver can drop it if it had it)."""
    again = webhooks.replay(get_store(), caller().viewer, webhook_id, delivery_id)
    webhooks.send_soon(get_jobs(), [again])
    return _delivery(again), 202
