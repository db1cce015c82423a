"""Email: parsing and classifying a message (pure: message.py, classify.py); docs/channels.md."""
