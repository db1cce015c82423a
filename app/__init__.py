"""The contact-center backend: every channel in one queue."""
