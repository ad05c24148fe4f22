"""Engines: vLLM through ray.data.llm, Ray Serve LLM applications, chat clients, endpoints and local models.

vLLM is imported only in engines/vllm.py and Ray Serve LLM only in engines/serve_llm.py, both lazily."""
