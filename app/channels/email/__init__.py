"""Email: mail in (parsed and classified: message.py, classify.py), replies out through the outbox
(compose.py); docs/channels.md."""
