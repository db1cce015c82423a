"""Workforce planning: the staff a forecast of calls needs (Erlang C and Erlang A, erlang.py)
and what-if runs of the routing policy (the simulator). Layer 8, beside the supervisors' live
view: it may import routing's pure policy (app/routing/policy.py, rules.py), never the database.
"""
