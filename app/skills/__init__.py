"""Skills: what an agent can do and what a queue requires (`billing`, `mandarin`, `vip`)."""
