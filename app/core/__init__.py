"""Layer 1: settings, database, errors, the event log."""
