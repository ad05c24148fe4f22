"""Content keys: stable hashes that say when two generations or judgements are the same work.

A record key covers what changes a candidate's output; a judgement key adds the judge and rubric version.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

# Engine arguments that change what a model writes; the rest (parallelism, memory) only change speed.
OUTPUT_ENGINE_ARGS = ("dtype", "quantization", "max_model_len", "tokenizer", "tokenizer_revision", "trust_remote_code")


def digest(obj: Any, n: int = 32) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def model_fingerprint(
    source: str, revision: str | None, engine_args: dict, chat_template: str | None, adapter: str | None
) -> str:
    return digest(
        {
            "source": source,
            "revision": revision,
            "engine": {k: engine_args.get(k) for k in OUTPUT_ENGINE_ARGS if engine_args.get(k) is not None},
            "chat_template": chat_template,
            "adapter": adapter,
        }
    )


RECORD_KEY_VERSION = 2  # 2: the item's identity is part of the key (keys of version 1 runs do not match)


def record_key(model_fp: str, messages: list[dict], sampling: dict, sample_index: int, item: tuple[str, str]) -> str:
    """One generation: model, rendered prompt, sampling, sample index and the item (benchmark name, item id).

    The item keeps two items whose prompts render the same apart: items are the unit a benchmark counts.
    """
    benchmark, item_id = item
    return digest({"v": RECORD_KEY_VERSION, "m": model_fp, "p": messages, "s": sampling, "i": sample_index,
                   "item": [benchmark, item_id]})  # fmt: skip


@functools.lru_cache(maxsize=65536)  # asked for once per item × strategy while rows are expanded
def cell_id(model: str, benchmark: str, strategy: str, guardrail: str | None = None) -> str:
    parts = [model, benchmark, strategy] + ([guardrail] if guardrail is not None else [])
    return "c" + digest(parts, 11)
