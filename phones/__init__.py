"""Phone identity, on the ground floor: every package that touches a number goes through here.

* ``parse_phone(raw, where=…)`` → ``Phone`` (E.164, host carrier, virtual) or ``InvalidPhone``: the one
  parser (API, CSV import, MO, opt-outs, caps); Unicode decimal digits folded to ASCII, nothing else let in.
* ``mask`` (``138****1234``) and ``mask_phones_in`` (numbers inside free text): the one masking function.
* ``PhoneVault`` (AES-GCM encryption + keyed hash), ``phone_hash`` / ``phone_subject`` / ``keyed_hash``,
  ``load_keys`` / ``vault_for``: keys from the environment or the data dir.
* ``BLOCKS`` / ``block_of``: our table of mainland number blocks; ``Portability`` (携号转网): the carrier
  of ported numbers, from SQL, consulted before the blocks (``carrier_of`` / ``resolve``).
"""

from ._canonical import MAX_LENGTH, InvalidPhone, Phone, fold, parse_phone
from ._masking import decimal_digits, mask, mask_phones_in, phone_pattern
from ._portability import (
    CARRIER_NAMES,
    ImportResult,
    Portability,
    PortabilityReject,
    number_portability,
    portability_for,
    ported,
)
from ._prefixes import BLOCKS, CARRIERS, VIRTUAL_PREFIXES, Block, block_of
from ._vault import (
    PhoneKeyError,
    PhoneKeys,
    PhoneVault,
    keyed_hash,
    load_encryption_key,
    load_hash_key,
    load_keys,
    phone_hash,
    phone_subject,
    vault_for,
)

CARRIER_LABELS = {"mobile": "移动", "unicom": "联通", "telecom": "电信", "broadnet": "广电", "other": "其他"}

__all__ = [
    "BLOCKS",
    "CARRIERS",
    "CARRIER_LABELS",
    "CARRIER_NAMES",
    "MAX_LENGTH",
    "VIRTUAL_PREFIXES",
    "Block",
    "ImportResult",
    "InvalidPhone",
    "Phone",
    "PhoneKeyError",
    "PhoneKeys",
    "PhoneVault",
    "Portability",
    "PortabilityReject",
    "block_of",
    "decimal_digits",
    "fold",
    "keyed_hash",
    "load_encryption_key",
    "load_hash_key",
    "load_keys",
    "mask",
    "mask_phones_in",
    "number_portability",
    "parse_phone",
    "phone_hash",
    "phone_pattern",
    "phone_subject",
    "portability_for",
    "ported",
    "vault_for",
]
