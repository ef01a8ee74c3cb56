"""Mainland China mobile number blocks (号段) → host network, written and kept by this project.

``phonenumbers`` validates numbers well but its carrier data lags the allocations of the Ministry of
Industry and Information Technology (工信部): China Mobile's 150/151/152/157/158/159 are missing from it and
came out as "other" (priced wrong). So the carrier of a number comes from this table, and only this table
(after the portability table, ``_portability.py``). Sources: the MIIT numbering plan (电信网码号资源) as
published by the operators; one row per 3-digit block, 4-digit rows where a block is split.

Data-only and IoT blocks (146, 148, 149, 14x 13-digit numbers) are left out: phonenumbers does not accept
them as mobiles and they take no SMS through this service.

Update it when the MIIT allocates a block: add the row and a case in ``tests/phones/test_prefixes.py``.
"""

from __future__ import annotations

import dataclasses

CARRIERS = ("mobile", "unicom", "telecom", "broadnet")
"""The four mainland networks: 中国移动, 中国联通, 中国电信, 中国广电."""


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    carrier: str
    """Host network: mobile / unicom / telecom / broadnet."""
    virtual: bool = False
    """A virtual operator's block (虚拟运营商, MVNO): priced as ``virtual``, carried by the host network."""


_M, _U, _T, _B = (Block(c) for c in CARRIERS)

BLOCKS: dict[str, Block] = {
    # 中国移动 China Mobile
    **dict.fromkeys(("1340", "1341", "1342", "1343", "1344", "1345", "1346", "1347", "1348"), _M),
    **dict.fromkeys(("135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159"), _M),
    **dict.fromkeys(("172", "178", "182", "183", "184", "187", "188", "195", "197", "198"), _M),
    # 中国联通 China Unicom
    **dict.fromkeys(("130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186", "196"), _U),
    # 中国电信 China Telecom (1349: its satellite service; 1740x: satellite too)
    **dict.fromkeys(("133", "1349", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199"), _T),
    **dict.fromkeys(("17400", "17401", "17402", "17403", "17404", "17405"), _T),
    # 中国广电 China Broadnet
    "192": _B,
    # 虚拟运营商 virtual operators, by host network
    **dict.fromkeys(("1700", "1701", "1702", "162"), Block("telecom", virtual=True)),
    **dict.fromkeys(("1703", "1705", "1706", "165"), Block("mobile", virtual=True)),
    **dict.fromkeys(("1704", "1707", "1708", "1709", "171", "167"), Block("unicom", virtual=True)),
}

VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")
"""The 3-digit blocks of virtual operators."""

_LENGTHS = sorted({len(k) for k in BLOCKS}, reverse=True)


def block_of(national: str) -> Block | None:
    """The block an 11-digit national number belongs to (longest prefix wins), or None if unallocated."""
    for n in _LENGTHS:
        block = BLOCKS.get(national[:n])
        if block is not None:
            return block
    return None
