"""The nickname rules of PROTOCOL.md, without any I/O."""

import pytest

from chatroom.domain import nicknames
from chatroom.domain.errors import NicknameInvalid


@pytest.mark.parametrize("nick", ["alice", "Zoë", "日本", "7of9", "a", "x" * 32, "bob_-1", "Ünï"])
def test_valid_nicknames_are_accepted(nick):
    assert nicknames.normalize(nick) == nick


def test_nfc_normalisation_makes_decomposed_and_composed_the_same():
    assert nicknames.normalize("Zoe\u0308") == "Zoë"
    assert nicknames.key("Zoe\u0308") == nicknames.key("ZOË")


def test_surrounding_whitespace_is_ignored():
    assert nicknames.normalize("  alice \t") == "alice"


@pytest.mark.parametrize(
    ("nick", "why"),
    [
        ("", "at least one"),
        ("   ", "at least one"),
        ("x" * 33, "at most 32"),
        ("_alice", "start with a letter or a digit"),
        ("-alice", "start with a letter or a digit"),
        ("*alice", "start with a letter or a digit"),
        ("!x", "start with a letter or a digit"),
        ("[x", "start with a letter or a digit"),
        ("/x", "start with a letter or a digit"),
        (":x", "start with a letter or a digit"),
        ("al ice", "a space"),
        ("al.ice", "'.'"),
        ("al\x07ice", "control character"),
        ("bob\ufffd", "'\ufffd'"),
    ],
)
def test_invalid_nicknames_say_why(nick, why):
    with pytest.raises(NicknameInvalid, match=why):
        nicknames.normalize(nick)


def test_length_counts_code_points_after_nfc():
    assert nicknames.normalize("ë" * 32) == "ë" * 32
    assert nicknames.normalize("e\u0308" * 32) == "ë" * 32  # 64 code points before NFC


def test_keys_compare_caselessly():
    assert nicknames.key("Alice") == nicknames.key("ALICE") == nicknames.key("alice")
    assert nicknames.key("Straße") == nicknames.key("STRASSE")
    assert nicknames.key("alice") != nicknames.key("alicia")
