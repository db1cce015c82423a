"""Routing: the pure policy (who gets what), the matcher around it, offers and the sweeper."""
