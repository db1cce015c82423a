"""Email: mail in (the listener, the inbound webhook, threading: inbound.py), parsing and
classifying a message (pure: message.py, classify.py), replies out through the outbox
(compose.py); docs/channels.md."""
