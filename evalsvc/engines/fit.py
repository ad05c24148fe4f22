"""Which prompts cannot fit a model's max_model_len: counted with the model's own tokenizer and chat template when
its folder is at hand (a local folder or a prepared evalsvc:// model), without loading vLLM or transformers.

`validate` and `plan` print the result; such a prompt's generation would fail and be recorded as an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from evalsvc.engines.vllm import CPU_ENGINE_DEFAULTS
from evalsvc.errors import UserError

SPECIAL_TOKEN_MARGIN = 8  # tokens a tokenizer may add beyond the rendered text (BOS, a dummy prefix)
SHOWN_ITEMS = 3  # item ids named per warning line (all are counted)


@dataclass
class FitCheck:
    """The outcome for one model × benchmark × strategy: items whose prompt cannot fit, and those whose answer
    may be cut short (prompt + max_tokens beyond the limit)."""

    model: str
    benchmark: str
    strategy: str
    limit: int
    max_tokens: int
    too_long: list[tuple[str, int]] = field(default_factory=list)  # (item id, prompt tokens)
    cut_short: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class FitReport:
    checks: list[FitCheck] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)  # model → why its prompts were not counted

    def warnings(self) -> list[str]:
        return [line for c in self.checks for line in _lines(c)]

    def to_json(self) -> dict:
        return {
            "problems": [{"model": c.model, "benchmark": c.benchmark, "strategy": c.strategy, "limit": c.limit,
                          "too_long": [{"item_id": i, "prompt_tokens": n} for i, n in c.too_long],
                          "cut_short": len(c.cut_short)}
                         for c in self.checks if c.too_long or c.cut_short],
            "unchecked": self.unchecked,
        }  # fmt: skip


def check_fit(plan) -> FitReport:
    """Count every prompt of the plan against its model's max_model_len (models whose tokenizer is at hand)."""
    report = FitReport()
    cpu = plan.manifest.resources.gpus_per_replica == 0
    for m in plan.models:
        if m.endpoint is not None:
            continue  # the server decides; its limit is not known here
        counter, why = _counter(m, cpu)
        if counter is None:
            report.unchecked[m.name] = why
            continue
        for b in plan.benchmarks:
            for s in plan.strategies:
                report.checks.append(_check(counter, m, b.name, s, plan.items[b.name]))
    return report


def _check(counter: PromptCounter, m, benchmark: str, strategy, items) -> FitCheck:
    c = FitCheck(m.name, benchmark, strategy.name, counter.limit, m.sampling.max_tokens)
    for item in items:
        messages = strategy.render(item)
        if counter.upper_bound(messages) + m.sampling.max_tokens < counter.limit:
            continue  # fits even in the worst case: no need to tokenize
        n = counter.count(messages)
        if n >= counter.limit:  # vLLM refuses a prompt that leaves no room for one output token
            c.too_long.append((item.item_id, n))
        elif n + m.sampling.max_tokens > counter.limit:
            c.cut_short.append((item.item_id, n))
    return c


def _lines(c: FitCheck) -> list[str]:
    where = f"{c.model} / {c.benchmark} / {c.strategy}"
    out = []
    if c.too_long:
        worst = sorted(c.too_long, key=lambda x: -x[1])
        named = ", ".join(f"{i} ({n} tokens)" for i, n in worst[:SHOWN_ITEMS])
        more = f" and {len(worst) - SHOWN_ITEMS} more" if len(worst) > SHOWN_ITEMS else ""
        out.append(f"{where}: {len(worst)} prompt(s) cannot fit max_model_len {c.limit}: {named}{more}; their "
                   "generations will fail (recorded as errors): raise engine_args.max_model_len, shorten or filter "
                   "the items")  # fmt: skip
    if c.cut_short:
        out.append(f"{where}: {len(c.cut_short)} prompt(s) leave fewer than max_tokens {c.max_tokens} of the "
                   f"{c.limit} tokens for the answer: those answers may be cut short (finish_reason length)")  # fmt: skip
    return out


class PromptCounter:
    """Tokens of a chat prompt as the engine's chat-template and tokenize stages would make them."""

    def __init__(self, tokenizer, template: str | None, special: dict[str, str], limit: int):
        self.tokenizer, self.special, self.limit = tokenizer, special, limit
        self.template = _compile(template) if template else None
        self._overhead: dict[tuple, int] = {}

    def render(self, messages: list[dict]) -> str:
        if self.template is None:
            return "\n".join(str(m.get("content") or "") for m in messages)
        return self.template.render(messages=messages, add_generation_prompt=True, **self.special)

    def count(self, messages: list[dict]) -> int:
        return len(self.tokenizer.encode(self.render(messages), add_special_tokens=True).ids)

    def upper_bound(self, messages: list[dict]) -> int:
        """At least the token count: every token covers at least one byte of the rendered text."""
        roles = tuple(m.get("role") or "" for m in messages)
        if roles not in self._overhead:
            self._overhead[roles] = len(self.render([{"role": r, "content": ""} for r in roles]).encode())
        content = sum(len(str(m.get("content") or "").encode()) for m in messages)
        return content + self._overhead[roles] + SPECIAL_TOKEN_MARGIN


def _counter(m, cpu: bool) -> tuple[PromptCounter | None, str]:
    source = m.engine_args.get("tokenizer") or m.source
    folder = _local_folder(source)
    if folder is None:
        if source.startswith("evalsvc://"):
            return None, f"tokenizer not at hand ({source} is not prepared yet: evalsvc models prepare {source[10:]})"
        return None, f"tokenizer not at hand ({source} is not a local model folder)"
    if not (folder / "tokenizer.json").is_file():
        return None, f"{folder} has no tokenizer.json"
    limit = _limit(m.engine_args, folder, cpu)
    if limit is None:
        return None, f"no max_model_len in engine_args and none in {folder / 'config.json'}"
    from tokenizers import Tokenizer

    config = _read_json(folder / "tokenizer_config.json")
    template = m.chat_template or config.get("chat_template")
    if isinstance(template, list):  # several named templates: the engine uses "default"
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    if template is None and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    special = {k: _token_text(config.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        return PromptCounter(tokenizer, template, special, limit), ""
    except Exception as e:  # noqa: BLE001 - any tokenizer or template this reader cannot handle: the run still tells
        return None, f"cannot read the tokenizer or chat template of {folder}: {type(e).__name__}: {e}"


def _local_folder(source: str) -> Path | None:
    from evalsvc.engines.prepare import SCHEME, is_prepared, model_path

    if source.startswith(SCHEME):
        name = source[len(SCHEME) :].strip("/")
        try:
            return model_path(name) if is_prepared(name) else None
        except UserError:  # an unknown local model: the run names it
            return None
    path = Path(source).expanduser()
    return path if "://" not in source and path.is_dir() else None


def _limit(engine_args: dict, folder: Path, cpu: bool) -> int | None:
    if engine_args.get("max_model_len"):
        return int(engine_args["max_model_len"])
    if cpu:
        return int(CPU_ENGINE_DEFAULTS["max_model_len"])
    n = _read_json(folder / "config.json").get("max_position_embeddings")
    return int(n) if n else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _token_text(token) -> str:
    if isinstance(token, dict):
        return str(token.get("content") or "")
    return str(token or "")


def _compile(template: str):
    """The template in a sandbox with the helpers chat templates expect (as Hugging Face tokenizers render them)."""
    from jinja2 import ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: __import__("time").strftime(fmt))
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    return env.from_string(template)
