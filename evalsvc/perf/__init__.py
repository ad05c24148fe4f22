"""`evalsvc bench SUITE`: measurements of evalsvc against plain vLLM, naive per-cell loads, the Ray Data substrate and peers.

Each suite is a module with `run(...) -> BenchResult` (see evalsvc.perf.suites); nothing runs at import time.
"""
