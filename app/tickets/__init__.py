"""Complaints: the five-step workflow (DESIGN.md section 5, docs/complaints.md)."""
