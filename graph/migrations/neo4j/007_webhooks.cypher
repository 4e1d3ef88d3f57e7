// Webhooks: (:Webhook {id, url, events, secret, salesperson_id, description, created_at,
// created_by, disabled_at}) and (:WebhookDelivery {id, subscription_id, event, payload,
// created_at, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error}).
// Mirrors graph/migrations/sqlite/007_webhooks.sql.
CREATE CONSTRAINT webhook_id IF NOT EXISTS FOR (w:Webhook) REQUIRE w.id IS UNIQUE;
CREATE CONSTRAINT webhook_delivery_id IF NOT EXISTS FOR (d:WebhookDelivery) REQUIRE d.id IS UNIQUE;
CREATE INDEX webhook_delivery_subscription IF NOT EXISTS FOR (d:WebhookDelivery) ON (d.subscription_id);
CREATE INDEX webhook_delivery_status IF NOT EXISTS FOR (d:WebhookDelivery) ON (d.status);
