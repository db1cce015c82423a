"""Agents: the users who take work, with skills, per-channel capacity and a state."""
