"""The nickname rules of PROTOCOL.md, without any I/O."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatroom.domain import nicknames
from chatroom.domain.errors import NicknameInvalid


@pytest.mark.parametrize(
    "nick",
    [
        "alice", "Zoë", "日本", "7of9", "a", "x" * 32, "bob_-1", "Ünï", "Ωmega", "Привет",
        "नमस्ते",  # Devanagari: a virama and vowel signs, combining marks after the first letter
        "\u01c5ungla",  # ǅ, a titlecase digraph
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth letters: a look-alike, but a valid one
        "\u0430lice",  # a Cyrillic a: the same, valid unless alice is present
    ],
)
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
        ("bob\ufffd", "U\\+FFFD, which stands for bytes that were not valid UTF-8"),
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


# -- issue 12, point 5: never silently altered, never invisible -------------------------


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("ctl\x01x", "cannot hold the control character U\\+0001"),
        ("esc\x1b[31mred", "cannot hold an escape sequence"),
        ("\x1b[31mred", "cannot hold an escape sequence"),
        ("del\x7f", "cannot hold the control character U\\+007F"),
        ("bob\x9b", "cannot hold the control character U\\+009B"),
        ("bob\x1f", "cannot hold the control character U\\+001F"),  # str.strip() would eat it
        ("\x1cbob", "cannot hold the control character U\\+001C"),
        ("bo\rb", "cannot hold the control character U\\+000D"),
    ],
)
def test_control_characters_and_escapes_are_refused_not_removed(raw, why):
    with pytest.raises(NicknameInvalid, match=why):
        nicknames.normalize(raw)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("alice\u034f", "COMBINING GRAPHEME JOINER"),
        ("alice\ufe0f", "VARIATION SELECTOR-16"),
        ("alice\u180b", "MONGOLIAN FREE VARIATION SELECTOR ONE"),
        ("al\U000e0100ice", "VARIATION SELECTOR-17"),
        ("\u3164", "HANGUL FILLER"),
        ("\u115f", "HANGUL CHOSEONG FILLER"),
        ("\u1160", "HANGUL JUNGSEONG FILLER"),
        ("\uffa0", "HALFWIDTH HANGUL FILLER"),
        ("bob\u3164", "HANGUL FILLER"),
        ("\u3164bob", "HANGUL FILLER"),
        ("al\u200bice", "ZERO WIDTH SPACE"),
        ("al\u200dice", "ZERO WIDTH JOINER"),
        ("al\u200cice", "ZERO WIDTH NON-JOINER"),
        ("alice\u200e", "LEFT-TO-RIGHT MARK"),
        ("alice\u200f", "RIGHT-TO-LEFT MARK"),
        ("alice\u061c", "ARABIC LETTER MARK"),
        ("ali\u202ece", "RIGHT-TO-LEFT OVERRIDE"),
        ("alice\u2066", "LEFT-TO-RIGHT ISOLATE"),
        ("al\u00adice", "SOFT HYPHEN"),
        ("ali\u2060ce", "WORD JOINER"),
        ("\ufeffalice", "ZERO WIDTH NO-BREAK SPACE"),
        ("\u17b4bob", "KHMER VOWEL INHERENT AQ"),
        ("bob\U000e0041", "TAG LATIN CAPITAL LETTER A"),
    ],
)
def test_invisible_characters_are_refused_with_their_name(raw, name):
    with pytest.raises(NicknameInvalid, match=f"cannot hold the invisible character U\\+.*{name}"):
        nicknames.normalize(raw)


@pytest.mark.parametrize(
    "raw", ["  alice", "alice\t", "\u3000alice\u00a0", "\u2009alice\u202f"]
)
def test_only_blanks_around_a_nickname_are_trimmed(raw):
    assert nicknames.normalize(raw) == "alice"


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u0430lice",  # Cyrillic a
        "\u0430l\u0456\u0441\u0435",  # all Cyrillic but the l
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
        "\uff21\uff2c\uff29\uff23\uff25",  # fullwidth capitals
        "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
        "\u0391lice",  # Greek capital alpha
        "\u03b1lice",  # Greek small alpha
        "a1ice",  # digit one for l
        "ALICE",
    ],
)
def test_a_lookalike_has_the_same_key(lookalike):
    assert nicknames.key(nicknames.normalize(lookalike)) == nicknames.key("alice")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("bob", "b0b"),  # zero for o
        ("Hans", "\u041dans"),  # Cyrillic capital en: its small letter is not an h
        ("Tom", "\u0422om"),  # Cyrillic capital te
        ("Mike", "\u039cike"),  # Greek capital mu
        ("Kim", "\u041aim"),  # Cyrillic capital ka
        ("Max", "Ma\u03c7"),  # Greek chi
        ("paypal", "\u0440\u0430\u0443\u0440\u0430l"),  # Cyrillic er, a, u, er, a
        ("Straße", "STRASSE"),
    ],
)
def test_more_lookalikes_share_a_key(one, other):
    assert nicknames.key(nicknames.normalize(other)) == nicknames.key(one)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("mike", "rnike"),  # not the same, as in ergo: two ASCII names would be one
        ("Nell", "Neil"),  # distinct names: capital I and small l are not folded together
        ("alice", "alicia"),
        ("Zoë", "Zoe"),
        ("日本", "日木"),
        ("ivan", "\u0438\u0432\u0430\u043d"),  # иван, Cyrillic: a different name
    ],
)
def test_names_that_can_be_told_apart_have_different_keys(one, other):
    assert nicknames.key(one) != nicknames.key(other)


def test_the_nickname_is_shown_as_typed_only_its_key_changes():
    for typed in ("\uff41\uff4c\uff49\uff43\uff45", "\u0430lice", "\u01c5ungla", "B0b"):
        assert nicknames.normalize(typed) == typed


_NICK_CHARS = st.characters(
    categories=("Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Mn", "Mc"), include_characters="_-"
)


@given(st.text(_NICK_CHARS, min_size=1, max_size=32))
def test_keys_are_caseless_and_never_depend_on_normalisation_form(text):
    assert nicknames.key(text) == nicknames.key(text.upper()) == nicknames.key(text.casefold())
    for form in ("NFC", "NFD", "NFKC"):
        assert nicknames.key(unicodedata.normalize(form, text)) == nicknames.key(text)


@given(st.text(_NICK_CHARS, min_size=1, max_size=32))
def test_a_valid_nickname_is_never_altered_but_by_nfc(text):
    try:
        nick = nicknames.normalize(text)
    except NicknameInvalid as e:
        assert "\n" not in str(e) and not any(unicodedata.category(c) == "Cc" for c in str(e))
        return
    assert nick == unicodedata.normalize("NFC", text)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in nick)
