"""Queues: named waiting lines with a service-level target, required skills and priority rules."""
