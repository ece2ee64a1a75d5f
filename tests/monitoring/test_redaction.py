"""Pure functions of what is shown: masking, truncation, fingerprints."""

from __future__ import annotations

import json

from monitoring.redaction import fingerprint, mask_secrets, summarise


def test_values_under_secret_looking_keys_are_masked_at_any_depth():
    value = {"password": "hunter2", "user": "ann", "nested": [{"api_token": "t", "Secret": 1, "key": "k"}]}

    assert mask_secrets(value) == {
        "password": "***",
        "user": "ann",
        "nested": [{"api_token": "***", "Secret": "***", "key": "***"}],
    }


def test_summary_is_json_cut_at_the_limit_and_says_how_much_was_cut():
    text = summarise({"data": "x" * 500}, limit=100)

    assert text.startswith('{"data": "xxx')
    assert text.endswith("… (412 more characters)")
    assert summarise([1, 2], limit=100) == json.dumps([1, 2])


def test_failures_differing_only_in_ids_and_numbers_share_a_fingerprint():
    first = fingerprint("KeyError", "bill 1234 not found for 'ACME' at 0x7f3a")
    second = fingerprint("KeyError", "bill 99 not found for 'Globex' at 0x1b2c")

    assert first == second
    assert fingerprint("ValueError", "bill 99 not found for 'Globex' at 0x1b2c") != first
    assert fingerprint("KeyError", "customer 99 gone") != first
