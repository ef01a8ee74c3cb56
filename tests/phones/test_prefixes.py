"""Our table of mainland number blocks: every block parses, to its network; the blocks phonenumbers lacks."""

from __future__ import annotations

import pytest

from smsguard.phones import BLOCKS, VIRTUAL_PREFIXES, block_of, parse_phone

# The current allocation, written out once more by hand so a typo in phones/_prefixes.py fails here.
EXPECTED = {
    "mobile": "1340-1348 135 136 137 138 139 147 150 151 152 157 158 159 172 178 182 183 184 187 188 195 197 198",
    "unicom": "130 131 132 145 155 156 166 175 176 185 186 196",
    "telecom": "133 1349 153 173 17400-17405 177 180 181 189 190 191 193 199",
    "broadnet": "192",
    "virtual mobile": "1703 1705 1706 165",
    "virtual unicom": "1704 1707 1708 1709 171 167",
    "virtual telecom": "1700 1701 1702 162",
}


def _expand(spec: str) -> list[str]:
    out = []
    for item in spec.split():
        if "-" in item:
            lo, hi = item.split("-")
            out += [str(n) for n in range(int(lo), int(hi) + 1)]
        else:
            out.append(item)
    return out


CASES = [(p, name) for name, spec in EXPECTED.items() for p in _expand(spec)]


def test_table_is_exactly_the_expected_allocation() -> None:
    assert sorted(BLOCKS) == sorted(p for p, _ in CASES)


@pytest.mark.parametrize(("prefix", "name"), CASES)
def test_every_block(prefix: str, name: str) -> None:
    carrier = name.split()[-1]
    virtual = name.startswith("virtual")
    for tail in ("0" * 11, "9" * 11, "5" * 11):
        number = (prefix + tail)[:11]
        p = parse_phone(number)
        assert (p.carrier, p.virtual) == (carrier, virtual), number
        assert p.price_key == ("virtual" if virtual else carrier)
        assert p.e164 == "+86" + number


@pytest.mark.parametrize("prefix", ["150", "151", "152", "157", "158", "159"])
def test_china_mobile_blocks_phonenumbers_lacks(prefix: str) -> None:
    """Issue 18: these came out as "other" (priced 0.05 instead of 0.045) from phonenumbers' carrier data."""
    from phonenumbers.carrierdata import CARRIER_DATA

    assert not any(k.startswith("86" + prefix) for k in CARRIER_DATA)  # why we keep our own table
    assert parse_phone(prefix + "12345678").price_key == "mobile"


def test_virtual_prefixes_are_all_virtual() -> None:
    for prefix in VIRTUAL_PREFIXES:
        blocks = [b for k, b in BLOCKS.items() if k.startswith(prefix)]
        assert blocks and all(b.virtual for b in blocks)


def test_unallocated_valid_number_is_other() -> None:
    assert block_of("16100000000") is None
    assert parse_phone("16100000000").carrier == "other"  # valid for phonenumbers (1610), not allocated here
