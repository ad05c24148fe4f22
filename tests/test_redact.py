"""Run metadata shown in reports never carries anything that looks like a credential."""

from __future__ import annotations

from evalsvc.redact import REDACTED, redact


def test_values_under_secret_keys_are_redacted_at_any_depth():
    doc = {
        "judge": {"api_key": "abc123", "max_tokens": 512, "rubric_id": "msb-harm"},
        "output": {"s3": {"secret_access_key": "hunter2", "access_key_id": "AKIAEXAMPLE", "region": "us-east-1"}},
        "auth_token": "t0k",
        "password": "pw",
        "env": [{"HF_TOKEN": "x"}],
        "record_key": "abc",
        "prompt_tokens": 12,
    }
    out = redact(doc)
    assert out["judge"] == {"api_key": REDACTED, "max_tokens": 512, "rubric_id": "msb-harm"}
    assert out["output"]["s3"] == {"secret_access_key": REDACTED, "access_key_id": REDACTED, "region": "us-east-1"}
    assert out["auth_token"] == out["password"] == out["env"][0]["HF_TOKEN"] == REDACTED
    assert out["record_key"] == "abc" and out["prompt_tokens"] == 12
    assert doc["judge"]["api_key"] == "abc123"  # the input is not modified


def test_env_references_and_empty_values_stay_visible():
    assert redact({"api_key": "${JUDGE_API_KEY}", "secret": None}) == {"api_key": "${JUDGE_API_KEY}", "secret": None}


def test_credential_shaped_values_are_redacted_under_any_key():
    out = redact(
        {
            "note": "sk-abcdefghijklmnop",
            "id": "AKIAABCDEFGHIJKLMNOP",
            "hf": "hf_" + "a" * 30,
            "url": "https://user:pa55@example.org/v1",
            "plain": "patient asked about dosing",
        }
    )
    assert out["note"] == out["id"] == out["hf"] == REDACTED
    assert out["url"] == f"https://{REDACTED}@example.org/v1"
    assert out["plain"] == "patient asked about dosing"
