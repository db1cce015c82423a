"""The routing benchmark: the real server, real agent sockets, a Poisson load, and the checks.

`make bench` (or `python -m bench --help`) runs it; docs/benchmarks.md explains the figures.
"""
