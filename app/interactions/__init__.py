"""Interactions: one contact on one channel (call, email thread, chat), queued, routed, handled."""
