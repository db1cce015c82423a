"""Email: mail in (the listener, the inbound webhook, threading) and mail out."""
