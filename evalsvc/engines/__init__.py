"""Engines: vLLM through ray.data.llm, Ray Serve LLM applications, chat clients, endpoints and local models.

vLLM is imported only in engines/vllm.py and Ray Serve only in engines/serve_llm/: lazily by the driver and the stage
actors, which send plain dicts (serve_llm/__init__.py), and by the judge's replica class, which Serve loads
(serve_llm/replica.py)."""
