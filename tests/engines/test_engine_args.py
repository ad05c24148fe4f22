"""Engine arguments the manifest passes through are checked against vLLM's own EngineArgs before any engine loads."""

from __future__ import annotations

import pytest

from evalsvc.engines.vllm import check_engine_args
from evalsvc.errors import UserError
from evalsvc.manifest.base import EngineArgs

# check_engine_args reads vLLM's own EngineArgs: importing vLLM takes seconds, so these belong to the slow tier.
pytestmark = pytest.mark.slow


def test_every_argument_the_manifest_names_is_a_vllm_engine_argument():
    names = set(EngineArgs.model_fields)
    check_engine_args(dict.fromkeys(names, 1), "m")  # raises on the first unknown one


def test_a_typo_is_named_with_a_suggestion():
    with pytest.raises(UserError, match=r"engine_args of ./ckpt: 'max_model_length' .*did you mean 'max_model_len'"):
        check_engine_args({"dtype": "float32", "max_model_length": 512}, "./ckpt")


def test_an_unrelated_name_points_to_the_reference():
    with pytest.raises(UserError, match="'zzzz_qqq' is not a vLLM engine argument; see vLLM's EngineArgs"):
        check_engine_args({"zzzz_qqq": 1}, "m")


def _blocked_while_the_lock_is_held(call) -> bool:
    """Whether `call` (run on another thread) waits for IMPORT_LOCK while this thread holds it."""
    import threading

    from evalsvc.engines.vllm import IMPORT_LOCK

    call()  # imports done once, so a call that skipped the lock would return at once below
    with IMPORT_LOCK:
        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(1.0)
        waited = worker.is_alive()
    worker.join(30)
    return waited and not worker.is_alive()


def test_the_driver_imports_vllms_stack_under_one_lock():
    """A run's driver imports vLLM's stack on two threads at once (the candidate processor; the judge's Serve apps on
    the start-up thread): transformers' lazy module then fails one of them with an ImportError. Both take the lock."""
    from evalsvc.engines.serve_llm import _serve

    assert _blocked_while_the_lock_is_held(lambda: check_engine_args({"dtype": "float32"}, "m"))
    assert _blocked_while_the_lock_is_held(_serve)
