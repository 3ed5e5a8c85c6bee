"""The one rule for lone surrogates (pando_core.text): escaped for reading, exact on the wire."""

from __future__ import annotations

import json
import os

from pando_core.runtime import protocol as P
from pando_core.text import display_json, display_text, json_storable, json_to_utf8


def test_an_undecodable_byte_shows_as_hex_and_other_surrogates_as_u_escapes() -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    assert display_text(name) == "caf\\xe9.txt"
    assert display_text("a\ud800b") == "a\\ud800b"
    plain = "café ✓"
    assert display_text(plain) is plain
    assert display_json({"k\udce9": ["v\udcff", 1, None]}) == {"k\\xe9": ["v\\xff", 1, None]}


def test_the_wire_keeps_the_exact_string_as_valid_utf8() -> None:
    value = {"name": "caf\udce9 \\ \ud800", "n": 1}
    data = P.encode_request(7, "m\ud800", value)
    data.decode("utf-8")  # valid UTF-8
    decoded = P.decode_json(data)
    assert decoded["method"] == "m\ud800" and decoded["params"] == value
    assert json.loads(json_to_utf8(P.encode_json(value))) == value
    assert json.loads(json_storable(P.encode_json(value))) == value
    json_storable(P.encode_json(value)).encode("utf-8")
