"""The plan: a validated manifest expanded into the grid of cells, guardrail arms and content keys.

Sits above the pure schema (manifest), the benchmark loaders and the strategies; nothing here needs Ray.
"""
