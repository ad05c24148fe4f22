"""The run lifecycle and the Ray Data pipeline per checkpoint: grid runs, guard-only runs, rescoring, progress."""
