"""Email: mail in from a listener or a webhook, replies out through the outbox."""
