"""Supervisors: the event log (audit trail) now; live queues and reports come later."""
