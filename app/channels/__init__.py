"""The channels that reach the center through adapters of their own: email today."""
