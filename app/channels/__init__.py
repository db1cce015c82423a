"""Channels other than voice: how messages from outside become interactions (email today)."""
