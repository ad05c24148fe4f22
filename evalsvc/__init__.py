"""evalsvc: distributed batch evaluation of the medical safety of LLMs on Ray.

Importing the package is cheap: Ray, vLLM and torch load only where a command needs them.
"""

__version__ = "0.1.0"
