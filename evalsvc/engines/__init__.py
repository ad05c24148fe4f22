"""Engines: vLLM through ray.data.llm, Ray Serve LLM applications, chat clients, endpoints and local models.

vLLM is imported only in engines/vllm.py and Ray Serve LLM only in engines/serve_llm.py (lazily, by the driver and
the stage actors, which send plain dicts) and engines/serve_replica.py (the judge replica's class, loaded by Serve)."""
