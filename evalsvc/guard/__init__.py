"""Guardrails at run time: serving the guard models and the stage that filters requests and answers per arm."""
