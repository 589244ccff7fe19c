"""Ban masks: what each form names, and which are too broad for a room operator."""

from __future__ import annotations

import pytest

from chatroom.domain import masks
from chatroom.domain.errors import BadMask
from chatroom.domain.masks import Identity


def test_a_nickname_mask_names_that_nickname_in_any_spelling() -> None:
    mask = masks.parse("Bob")
    assert (mask.kind, mask.text) == ("nick", "Bob")
    assert mask.matches(Identity("bob")) and mask.matches(Identity("BOB"))
    assert mask.matches(Identity("b\u043eb"))  # Cyrillic o: a look-alike is the same name
    assert not mask.matches(Identity("bobby"))
    assert masks.parse("bob").key == mask.key


def test_an_account_mask_names_whoever_is_signed_in_to_it() -> None:
    mask = masks.parse("~a:Alice")
    assert (mask.kind, mask.text) == ("account", "~a:Alice")
    assert mask.matches(Identity("whoever", account="alice"))
    assert not mask.matches(Identity("alice"))  # the nickname alone is not the account
    assert not mask.matches(Identity("alice", account="alicia"))


@pytest.mark.parametrize(("raw", "host", "named"), [
    ("203.0.113.7", "203.0.113.7", True),
    ("203.0.113.7", "203.0.113.8", False),
    ("203.0.113.0/24", "203.0.113.200", True),
    ("203.0.113.9/24", "203.0.113.200", True),  # the host bits do not matter
    ("203.0.113.0/24", "203.0.114.1", False),
    ("203.0.113.7", "::ffff:203.0.113.7", True),  # IPv4 through an IPv6 socket
    ("::ffff:203.0.113.7", "203.0.113.7", True),
    ("2001:db8::/32", "2001:db8:1::5", True),
    ("2001:db8::/32", "2001:db9::5", False),
    ("2001:db8::/32", "203.0.113.7", False),
    ("203.0.113.7", None, False),  # a UNIX socket has no address
])
def test_an_address_or_network_mask(raw: str, host: str | None, named: bool) -> None:
    mask = masks.parse(raw)
    assert mask.kind == "network"
    assert mask.matches(Identity("anyone", host=host)) is named


def test_two_spellings_of_one_network_are_one_mask_and_an_address_shows_bare() -> None:
    assert masks.parse("10.1.2.3/8").key == masks.parse("10.0.0.0/8").key
    assert masks.parse("10.1.2.3/8").text == "10.0.0.0/8"
    assert masks.parse("203.0.113.7").text == "203.0.113.7"
    assert masks.parse("2001:DB8::1").text == "2001:db8::1"


@pytest.mark.parametrize(("raw", "broad"), [
    ("*", True),
    ("0.0.0.0/0", True),
    ("::/0", True),
    ("10.0.0.0/8", True),
    ("172.16.0.0/15", True),
    ("172.16.0.0/16", False),
    ("2001:db8::/31", True),
    ("2001:db8::/32", False),
    ("203.0.113.7", False),
    ("bob", False),
    ("~a:bob", False),
])
def test_masks_that_name_everyone_or_a_wide_network_are_broad(raw: str, broad: bool) -> None:
    assert masks.parse(raw).broad is broad


def test_everyone_names_everyone() -> None:
    assert masks.parse("*").matches(Identity("x"))


@pytest.mark.parametrize("raw", ["", "  ", "-bob", "bob!x@y", "~a:", "~a:-x", "1.2.3.4/33",
                                 "300.1.2.3", "1.2.3", "gggg::1", "bob\x1b[31m"])
def test_a_bad_mask_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(BadMask) as caught:
        masks.parse(raw)
    assert str(caught.value)


def test_host_address_reads_ipv4_in_ipv6_and_refuses_names() -> None:
    assert str(masks.host_address("::ffff:10.0.0.1")) == "10.0.0.1"
    assert str(masks.host_address("fe80::1%eth0")) == "fe80::1"
    assert masks.host_address("localhost") is None
    assert masks.host_address(None) is None
