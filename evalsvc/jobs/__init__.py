"""Laptop to cluster: submit a manifest as a Ray job, follow it, stop it, and find runs by id.

`client` talks to the Ray Jobs API (token auth), `submission` builds what is sent, `runs` reads what a run wrote.
"""
