"""Customers: profile, tier (the customer pyramid), lifecycle stage, contact points."""
