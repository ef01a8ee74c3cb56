"""SMS compliance rules, driven by policy.yaml.

Form rules (skipped with ``content_only``): signature present and well formed, marketing carries
an opt-out instruction (so does an advert sent as a notification, and a reply solicitation such as
回复1了解详情 makes an undeclared message marketing), a verification message is one 4–6 character code
with no link and no marketing (loan offers, an opt-out, a reply solicitation count as marketing there).
Content rules (always): links only to allowed domains (bare IPs, URL shorteners, dots disguised as
点 / (.) / · and hosts that borrow an official name such as gov, 12123 or ETC flagged), no diversion
to private contacts (phone numbers, WeChat / QQ ids and group numbers, however obfuscated: the contact
view of ``_normalize`` reads spoken digits and hearts), and the length limit.

Rules read two views of the text (see ``_normalize``): the folded view for anything an evader
would disguise (contacts, opt-out wording, cue words), the light view where punctuation matters
(URLs, 【signatures】, codes). Every span is mapped back to the original text.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from ipaddress import ip_address
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import numpy as np

from ._normalize import SPOKEN_DIGITS, Normalizer, OffsetMap
from ._policy import Policy, RuleSetting, TenantPolicy
from ._verdict import Message, Reason

# Every rule code with its built-in setting; policy.yaml must set each one (so a reader of the
# policy sees the whole list) and may change severity, action and per-kind actions.
RULE_CODES: dict[str, str] = {
    "signature.missing": "no 【signature】 at the start or end of the message",
    "signature.length": "signature must be {min}–{max} characters",
    "signature.multiple": "more than one 【signature】",
    "signature.unregistered": "signature is not one of the tenant's registered signatures",
    "marketing.optout_missing": "marketing message without an opt-out instruction (e.g. 回T退订)",
    "marketing.undeclared": "marketing content in a message sent as {declared}, without an opt-out instruction",
    "verification.no_code": "verification message without a {min}–{max} character code",
    "verification.multiple_codes": "verification message with more than one code-like value",
    "verification.link": "verification message must not contain a link",
    "verification.marketing": "verification message must not carry marketing content",
    "link.not_allowed": "link to a domain not on the allowed list",
    "link.shortener": "link through a URL shortener hides its destination",
    "link.bare_ip": "link to a bare IP address",
    "link.disguised": "link written with a disguised dot (点, (.), ·) to slip past link checks",
    "link.lookalike": "link to a domain that imitates an official site (government, 12123, ETC)",
    "contact.phone": "private phone number (diversion to a personal contact)",
    "contact.wechat": "WeChat id (diversion to a private contact)",
    "contact.qq": "QQ number (diversion to a private contact)",
    "contact.email": "e-mail address (diversion to a private contact)",
    "length.over_limit": "message is {length} characters, over the {max} character limit",
}

_SIG_START = re.compile(r"^\s*【([^【】]*)】")
_SIG_END = re.compile(r"【([^【】]*)】\s*$")
_SIG_ANY = re.compile(r"【[^【】]*】")
_URL_STOP = r"\s<>\"'，。、；！？（）【】《》「」{}|\\^`\u4e00-\u9fff"
_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_MOBILE = re.compile(r"(?<![0-9])(?:86)?(1[3-9][0-9]{9})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0[1-9][0-9]{1,2}[2-9][0-9]{6,7})(?![0-9])")
# Numbers written with separators in the light view ("138 0013-8000").
_MOBILE_SPACED = re.compile(r"(?<![0-9])(1[3-9](?:[ \-.]?[0-9]){9})(?![0-9])")
_LINK_TRIGGER = re.compile(r"[a-z0-9-]\.|://")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_MOBILE_START = re.compile(r"1[3-9]")
_CODE = re.compile(r"(?<![a-z0-9])([a-z0-9]{%d,%d})(?![a-z0-9])")
# A reply instruction that solicits (回复1了解详情, 回复H获取帮助): marketing, though no opt-out and no cue word.
_REPLY_SOLICIT = re.compile(r"回[复覆]?[a-z0-9]{1,4}(?:了解|获取|咨询|办理|领取|参与|订购|查看|预约|报名|抢)")
# Marketing cue words too common in service notices to call a declared notification marketing on their own
# (请准时到店, 新品种玉米, 您收到一个红包).
_WEAK_MARKETING = frozenset({"到店", "新品", "开业", "红包", "中奖", "抽奖", "团购", "福利", "上新", "会员日"})
# Offers that have no place in a verification message (folded): loans and promotions the kind cues miss.
_VERIFICATION_OFFERS = (
    "低息", "免息", "日息", "月息", "最高可借", "额度最高", "最高额度", "秒批", "秒到账", "极速放款", "快速放款",
    "当天放款", "下款快", "借款享", "贷款享", "无抵押", "免抵押", "立即借", "马上借", "借钱", "专享", "立减",
    "返现", "礼包", "限量", "低至", "全场", "新人礼", "免单", "0元购", "抢券", "活动进行中",
)  # fmt: skip
# A dot written so that link checks miss it, on the light view: 点, (.), [.], 【点】, ·, •, 丶, " dot ", " ." (a
# dot after a space; "home. so" is a sentence, not a host).
_SEP = r"(?:[(\[{【〔<]\s*(?:\.|点|dot)\s*[)\]}】〕>]|点|[·•・‧∙⋅丶]|\sdot\s|\s\.\s?)"
# TLDs that are also English words: a disguised host may not end in one.
_WORD_TLDS = frozenset(
    ("in", "me", "so", "co", "la", "im", "tv", "io", "ly", "tk", "fun", "live", "link", "app", "ink")
)  # fmt: skip
# A disguised dot between two Latin letters or digits: one search, and only texts with one run the host regex.
# One character class (an alternation would be tried at every position) for the dots written as characters; the
# bracketed and spaced dots (".)", " .", " dot ") are substring tests beside it. Not "【": every signature has one.
_DISGUISE_START = re.compile("[点·•・‧∙⋅丶]")
_DISGUISE_HINT = re.compile(rf"[a-z0-9]\s*{_SEP}\s*[a-z0-9]")
# Possessive: a long run of letters (80w masks digits as xxxxxxxx) must not be re-split at every length.
_LABEL = r"[a-z0-9][a-z0-9-]*+"
_SEP_ANY = re.compile(rf"\s*{_SEP}\s*")
_DISGUISE_MARK = re.compile(r"点|dot|[·•・‧∙⋅丶()\[\]{}【】〔〕<>\s]")
# Official names a phishing domain borrows (etc-gov.cn.xyz, 12123-gov.top); only .gov.cn hosts own them.
_OFFICIAL_MARKS = ("gov", "12123", "12306", "12366", "12315", "12368", "chinatax")
_OFFICIAL_SUFFIXES = (".gov.cn", ".12306.cn")
_CUE_GAP = 8  # characters allowed between a code cue (验证码) and its code: "是", "为：", " is "
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


@dataclass(slots=True)
class TextViews:
    """The original text and its views, with offset maps (and the light view, when not given) built on first use."""

    original: str
    folded: str
    _light: str | None
    norm: Normalizer
    marked: str | None = None  # the marked fold (Normalizer.fold_many_marked), when the caller has it
    flags: int = -1
    """Which rule triggers the text may hold (``Rules.flags_many``); -1: all of them, every rule runs its own checks."""
    _fold_map: OffsetMap | None = None
    _light_map: OffsetMap | None = None
    _contact: tuple[str, OffsetMap] | bool | None = False  # False: not built yet

    @property
    def light(self) -> str:
        if self._light is None:
            self._light = self.norm.light(self.original)
        return self._light

    def from_folded(self, start: int, end: int) -> tuple[int, int]:
        if self._fold_map is None:
            self._fold_map = self.norm.fold_offsets(self.original, self.marked)
        return self._fold_map.span(start, end)

    def contact(self) -> tuple[str, OffsetMap] | None:
        """The contact view and its offset map (``Normalizer.contact_view``), or None where it is the fold."""
        if self._contact is False:
            self._contact = self.norm.contact_view(self.original, self.marked)
        return self._contact  # type: ignore[return-value]

    def from_light(self, start: int, end: int) -> tuple[int, int]:
        if self._light_map is None:
            self._light_map = self.norm.light_offsets(self.original)
        return self._light_map.span(start, end)


# Rule triggers found for a whole batch at once (Rules.flags_many): one bit each.
F_VERIFICATION = 1  # a verification cue word (folded)
F_MARKETING = 2  # a marketing cue word (folded)
F_OPTOUT = 4  # a first character of an opt-out pattern (folded): a superset
F_CUE = 8  # a first character of a WeChat / QQ cue or a spoken digit (folded): the cue trigger, exact
F_DIGITS = 16  # ten digits or more in the text (folded): a superset of ten in a row
F_MOBILE = 32  # a character whose light view holds "1" (a spaced mobile starts with 1[3-9]): a superset
F_LINK = 64  # a character whose light view holds ".", a disguised dot or "d" (of " dot "): a superset
LIGHT_FLAGS = F_MOBILE | F_LINK
"""The triggers of the rules that read the light view (the verification rules build it themselves)."""


def _texts_matching(pattern: re.Pattern[str], joined: str, starts: list[int]) -> list[int]:
    """Which texts of ``joined`` (texts joined with \x01, starting at ``starts``) hold a match of ``pattern``, a
    trigger followed by ``[^\x01]*``: the tail takes the rest of the text, so each text is one match at most."""
    return [bisect_right(starts, m.start()) - 1 for m in pattern.finditer(joined)]


def _batch_trigger(words: re.Pattern[str]) -> re.Pattern[str]:
    """``words`` (an alternation of literal cue words: no ``.``, class, anchor or \x01, so a search of the joined
    batch finds a match in a text exactly when a search of the text does) followed by the rest of its text."""
    return re.compile(f"(?:{words.pattern})[^\x01]*")


def _first_chars(pattern: str) -> set[str] | None:
    """Every character a match of ``pattern`` can start with, or None when that is not a small known set (a class
    of more than 256 characters, ``.``, a category, a negation, a pattern that can match the empty string)."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error:
        return None
    c = sre_parse
    if tree.state.flags & re.IGNORECASE:
        return None  # a literal would stand for its other cases too

    def first(items: Any) -> tuple[set[str], bool] | None:
        """(first characters, whether the sequence can match empty) of a parsed sequence."""
        out: set[str] = set()
        for op, av in items:
            if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue  # zero width: the next item starts the match
            got: tuple[set[str], bool] | None
            if op is c.LITERAL:
                got = {chr(av)}, False
            elif op is c.IN:
                chars: set[str] = set()
                for iop, iav in av:
                    if iop is c.LITERAL:
                        chars.add(chr(iav))
                    elif iop is c.RANGE and iav[1] - iav[0] < 256:
                        chars.update(map(chr, range(iav[0], iav[1] + 1)))
                    else:
                        return None
                got = chars, False
            elif op is c.BRANCH:
                parts = [first(b) for b in av[1]]
                if any(p is None for p in parts):
                    return None
                got = set().union(*(p[0] for p in parts)), any(p[1] for p in parts)  # type: ignore[index]
            elif op is c.SUBPATTERN and av[1] & re.IGNORECASE:
                return None
            elif op is c.SUBPATTERN or op is c.ATOMIC_GROUP:
                got = first(av[-1] if op is c.SUBPATTERN else av)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                inner = first(av[2])
                got = None if inner is None else (inner[0], inner[1] or av[0] == 0)
            else:
                return None
            if got is None:
                return None
            out |= got[0]
            if not got[1]:
                return out, False
        return out, True

    found = first(tree)
    return None if found is None or found[1] else found[0]


class Rules:
    """The rules compiled against one policy (cue words folded, regexes built once)."""

    def __init__(self, policy: Policy, norm: Normalizer) -> None:
        self.policy = policy
        self._norm = norm
        self._plain_reasons: dict[tuple[str, str], Reason] = {}

        def alternation(words: list[str]) -> str:
            folded = sorted({norm.fold(w) for w in words if norm.fold(w)}, key=len, reverse=True)
            return "|".join(map(re.escape, folded)) or "(?!)"

        self._verification_cue = re.compile(alternation(policy.kinds.verification))
        light_cues = sorted({norm.light(w) for w in policy.kinds.verification}, key=len, reverse=True)
        self._code_cue = re.compile("|".join(map(re.escape, light_cues)) or "(?!)")
        self._marketing_cue = re.compile(alternation(policy.kinds.marketing))
        strong = [w for w in policy.kinds.marketing if w not in _WEAK_MARKETING]
        self._strong_marketing = re.compile(alternation(strong))
        self._verification_offer = re.compile(alternation(list(_VERIFICATION_OFFERS)))
        self._optout = [re.compile(p) for p in policy.optout_patterns]

        def cues(words: list[str], ids: str) -> str:
            # The folded view has no spaces, so a Latin cue must not continue a Latin word ("new Xiaomi"
            # folds to "newxiaomi", which holds "wx"), and a one-character cue (微, 薇) is only trusted
            # before a number ("张薇Vivian" is a name).
            latin = [w for w in words if norm.fold(w).isascii()]
            short = [w for w in words if len(norm.fold(w)) == 1 and w not in latin]
            other = [w for w in words if w not in latin and w not in short]
            # 群 / 裙 (its homophone) after a cue: a group number (扣扣群, q裙, 微信群).
            return (
                rf"(?:(?<![a-z])(?:{alternation(latin)})|(?:{alternation(other)}))(?:[群裙]号?|号|id|账号|帐号)?"
                rf"(?:是|为)?(?P<id>{ids})|(?:{alternation(short)})(?:号)?(?P<num>[0-9]{{5,12}})"
            )

        def first_chars(words: list[str]) -> str:
            # Leading lookahead: the regex engine skips a position on one class test instead of trying every cue
            # alternative there (2.5x faster over the texts that reach these patterns).
            return "(?=[" + "".join(sorted({re.escape(norm.fold(w)[:1]) for w in words if norm.fold(w)})) + "])"

        wechat, qq = policy.contacts.wechat_cues, policy.contacts.qq_cues
        self._wechat = re.compile(first_chars(wechat) + f"(?:{cues(wechat, r'[a-z][a-z0-9]{4,19}|[0-9]{5,12}')})")
        self._qq = re.compile(first_chars(qq) + f"(?:{cues(qq, r'[0-9]{5,11}')})")
        # Every WeChat / QQ match starts with a folded cue word: when none of their first characters (nor a spoken
        # digit) is in the text (most messages), neither pattern can match and both scans are skipped.
        firsts = {norm.fold(w)[:1] for w in policy.contacts.wechat_cues + policy.contacts.qq_cues} - {""}
        firsts |= set(SPOKEN_DIGITS)  # a phone number in spoken digits (see _contacts; 兩 folds to 两)
        self._cue_trigger = re.compile(f"[{''.join(map(re.escape, sorted(firsts)))}]")
        # One search instead of one per pattern (policy patterns are plain regexes; fall back if they clash).
        try:
            self._optout_any: re.Pattern[str] | None = re.compile("|".join(f"(?:{p})" for p in policy.optout_patterns))
        except re.error:
            self._optout_any = None
        if not policy.optout_patterns:
            self._optout_any = re.compile("(?!)")
        tlds = "|".join(sorted(map(re.escape, policy.links.tlds), key=len, reverse=True)) or "(?!)"
        self._url = re.compile(
            rf"(?:https?://|www\.)[^{_URL_STOP}]+"
            rf"|(?<![0-9.])(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}}(?=[:/])[^{_URL_STOP}]*"
            rf"|(?<![a-z0-9@._-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{tlds})(?![a-z0-9-])(?:[/:?#][^{_URL_STOP}]*)?"
        )
        v = policy.verification
        # Disguised hosts end in a TLD that is no English word ("that . so", "home 点 me" are not hosts).
        strong = sorted((t for t in policy.links.tlds if t not in _WORD_TLDS), key=len, reverse=True)
        strong_tlds = "|".join(map(re.escape, strong)) or "(?!)"
        self._disguised = re.compile(
            rf"(?<![a-z0-9.-])(?:www(?:{_SEP_ANY.pattern}|\.))?(?:{_LABEL}(?:{_SEP_ANY.pattern}|\.))+(?:{strong_tlds})"
            rf"(?![a-z0-9-])(?:[/:?#][^{_URL_STOP}]*)?"
        )
        self._code = re.compile(_CODE.pattern % (v.code_min, v.code_max))
        self._shorteners = {s.lower() for s in policy.links.shorteners}

        # Triggers of whole rules, found once per batch (flags_many) instead of once per text and rule: most texts
        # hold none, and their rules then cost nothing. Single characters go through a per-code-point bit table
        # (numpy over the batch's code points, OR-reduced per text); cue words through one regex scan of the joined
        # batch.
        self._fold_bits = np.zeros(0x110000, dtype=np.uint8)
        for ch in firsts:  # the cue trigger's characters: exact
            self._fold_bits[ord(ch)] |= F_CUE
        self._is_digit = np.zeros(0x110000, dtype=np.uint8)
        self._is_digit[ord("0") : ord("9") + 1] = 1  # ten digits in a row need ten digits in the text
        self._raw_bits = np.zeros(0x110000, dtype=np.uint8)
        # The light view is built only for texts that need it, so its triggers are looked up in the original text:
        # every character whose light view holds what the rule looks for (its preimage under the light table).
        for bit, targets in ((F_MOBILE, "1"), (F_LINK, ".点·•・‧∙⋅丶d")):
            for ch in _preimage(norm, targets):
                self._raw_bits[ord(ch)] |= bit
        self._word_triggers: list[tuple[int, re.Pattern[str]]] = [
            (F_VERIFICATION, _batch_trigger(self._verification_cue)),
            (F_MARKETING, _batch_trigger(self._marketing_cue)),
        ]
        # An opt-out instruction can only start with one of its patterns' first characters (a superset: the rules
        # still search the pattern where the bit is set); a pattern whose first characters are unknown sets the
        # bit for every text.
        self._always = 0
        for pattern in policy.optout_patterns:
            starts = _first_chars(pattern)
            if starts is None:
                self._always |= F_OPTOUT
                break
            for ch in starts:
                self._fold_bits[ord(ch)] |= F_OPTOUT

    def flags_many(self, texts: list[str], folded: list[str]) -> list[int]:
        """Each text's rule triggers (the F_* bits) for a batch."""
        if not texts:
            return []
        f_joined = "\x01".join(folded)
        # A trailing separator: every text's stretch, an empty fold included, is non-empty for reduceat.
        f_codes = np.frombuffer((f_joined + "\x01").encode("utf-32-le"), dtype=np.uint32)
        f_starts = _starts(folded)
        flags = np.bitwise_or.reduceat(self._fold_bits[f_codes], f_starts).astype(np.int64)
        flags[np.add.reduceat(self._is_digit[f_codes], f_starts, dtype=np.int64) >= 10] |= F_DIGITS
        r_codes = np.frombuffer(("\x01".join(texts) + "\x01").encode("utf-32-le"), dtype=np.uint32)
        flags |= np.bitwise_or.reduceat(self._raw_bits[r_codes], _starts(texts))
        if self._always:
            flags |= self._always
        out = flags.tolist()
        starts = f_starts.tolist()
        for bit, pattern in self._word_triggers:
            for j in _texts_matching(pattern, f_joined, starts):
                out[j] |= bit
        return out

    # -- kind ----------------------------------------------------------------------------------
    def infer_kind(self, views: TextViews) -> str:
        folded, flags = views.folded, views.flags
        if flags & F_VERIFICATION and self._verification_cue.search(folded):
            return "verification"
        if (flags & F_MARKETING and self._marketing_cue.search(folded)) or (
            flags & F_OPTOUT and self._has_optout(folded)
        ):
            return "marketing"
        return self.infer_kind_untriggered(folded)

    @staticmethod
    def infer_kind_untriggered(folded: str) -> str:
        """``infer_kind`` of a text without a verification, marketing or opt-out trigger (flags 0)."""
        if "回" in folded and _REPLY_SOLICIT.search(folded):
            return "marketing"
        return "notification"

    def _has_optout(self, folded: str) -> bool:
        if self._optout_any is not None:
            return self._optout_any.search(folded) is not None
        return any(p.search(folded) for p in self._optout)

    # -- all rules -----------------------------------------------------------------------------
    def check(self, msg: Message, views: TextViews, kind: str, *, content_only: bool) -> tuple[list[Reason], int, int]:
        """Run every rule; returns the reasons plus the billed length and segment count."""
        out: list[Reason] = []
        tenant = self.policy.tenant(msg.tenant)
        signature = self._signature(msg, views, tenant, kind, out, check=not content_only)
        flags = views.flags
        links = self._links(views, tenant, kind, out, form=not content_only) if flags & F_LINK else []
        if flags & (F_CUE | F_DIGITS | F_MOBILE):
            self._contacts(views, tenant, kind, out)
        if not content_only:
            if kind == "marketing" and not (flags & F_OPTOUT and self._has_optout(views.folded)):
                out.append(self._reason("marketing.optout_missing", kind))
            elif kind == "notification" and msg.kind is not None:  # an inferred notification has no advert cue
                self._undeclared_marketing(views, kind, out)
            if kind == "verification":
                self._verification(views, kind, links, out)
        length, segments = self._length(msg.text, signature, kind, out)
        return out, length, segments

    def check_untriggered(self, msg: Message, kind: str, *, content_only: bool) -> tuple[list[Reason], int, int]:
        """``check`` of a text with no trigger bit set (flags 0) and an inferred kind (``infer_kind_untriggered``):
        no link or contact rule can match and the kind rules need no view, so no TextViews is built."""
        out: list[Reason] = []
        signature = self._signature(msg, None, self.policy.tenant(msg.tenant), kind, out, check=not content_only)
        if not content_only and kind == "marketing":  # no opt-out trigger: the opt-out is missing
            out.append(self._reason("marketing.optout_missing", kind))
        length, segments = self._length(msg.text, signature, kind, out)
        return out, length, segments

    def _reason(
        self, code: str, kind: str, *, term: str | None = None, span: tuple[int, int] | None = None, **fmt: object
    ) -> Reason:
        if term is None and span is None and not fmt:
            # A reason with nothing of the message in it (signature.missing on most bulk text): built once per
            # (code, kind), answered as a copy so no two verdicts share a mutable object.
            plain = self._plain_reasons.get((code, kind))
            if plain is None:
                plain = self._plain_reasons[(code, kind)] = self._new_reason(code, kind, None, None)
            return plain.__copy__()
        return self._new_reason(code, kind, term, span, **fmt)

    def _new_reason(
        self, code: str, kind: str, term: str | None, span: tuple[int, int] | None, **fmt: object
    ) -> Reason:
        setting: RuleSetting = self.policy.rules[code]
        return Reason(
            code=code,
            category=setting.category,
            severity=setting.severity,
            source="rule",
            action=setting.action_for(kind),
            message=RULE_CODES[code].format(**fmt) if fmt else RULE_CODES[code],
            term=term,
            start=span[0] if span else None,
            end=span[1] if span else None,
        )

    def _enabled(self, code: str) -> bool:
        return self.policy.rules[code].enabled

    # -- signature -----------------------------------------------------------------------------
    def _signature(
        self, msg: Message, views: TextViews | None, tenant: TenantPolicy, kind: str, out: list[Reason], *, check: bool
    ) -> str | None:
        """The signature in force: the one in the text, else the one the sender passed separately."""
        text = msg.text
        m = (_SIG_START.search(text) or _SIG_END.search(text)) if "【" in text else None
        in_text = m.group(1) if m else None
        signature = in_text if in_text is not None else msg.signature
        if not check:
            return None if in_text is not None else msg.signature
        if signature is None:
            if self._enabled("signature.missing"):
                out.append(self._reason("signature.missing", kind))
            return None
        span = (m.start(1) - 1, m.end(1) + 1) if m else None
        s = self.policy.signature
        if not s.min_len <= len(signature.strip()) <= s.max_len and self._enabled("signature.length"):
            out.append(self._reason("signature.length", kind, term=signature, span=span, min=s.min_len, max=s.max_len))
        if len(_SIG_ANY.findall(text)) > 1 and self._enabled("signature.multiple"):
            out.append(self._reason("signature.multiple", kind))
        if tenant.signatures and signature.strip() not in tenant.signatures and self._enabled("signature.unregistered"):
            out.append(self._reason("signature.unregistered", kind, term=signature, span=span))
        return None if in_text is not None else signature

    # -- links ---------------------------------------------------------------------------------
    def _links(
        self, views: TextViews, tenant: TenantPolicy, kind: str, out: list[Reason], *, form: bool
    ) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        light = views.light
        # Disguised dots first, and only when the light view holds one of their characters at all.
        dot = "." in light
        if (
            _DISGUISE_START.search(light) is not None
            or (dot and (" ." in light or ".)" in light or ".]" in light or ".】" in light))
            or " dot " in light
        ) and _DISGUISE_HINT.search(light) is not None:
            self._disguised_links(views, tenant, kind, out, found, form=form)
        # Links are looked for only where the light view holds a dot (so "http://x" in a text without any dot is
        # not reported: kept as it always was), and every URL and e-mail alternative holds "://" or an ASCII
        # letter, digit or "-" right before a dot. Chinese full stops read as dots, so a bare "." says little.
        if not dot or _LINK_TRIGGER.search(light) is None:
            return found
        emails = [(m.start(), m.end()) for m in _EMAIL.finditer(light)]
        disguised = list(found)
        for m in self._url.finditer(light):
            if any(a <= m.start() < b for a, b in emails):
                continue
            url = m.group(0).rstrip(".,;:!?")
            span = views.from_light(m.start(), m.start() + len(url))
            if any(a < span[1] and span[0] < b for a, b in disguised):
                continue  # part of a disguised link, reported as one
            found.append(span)
            if kind == "verification" and form:
                continue  # verification.link reports it
            host = _host(url)
            if _is_ip(host):
                code = "link.bare_ip"
            elif self._domain_in(host, self._shorteners):
                code = "link.shortener"
            elif self._domain_in(host, set(self.policy.links.allowed_domains) | set(tenant.allowed_domains)):
                continue
            else:
                code = "link.lookalike" if _lookalike(host) else "link.not_allowed"
            if self._enabled(code):
                out.append(self._reason(code, kind, term=views.original[span[0] : span[1]], span=span))
        if emails and self._enabled("contact.email"):
            for a, b in emails:
                span = views.from_light(a, b)
                out.append(self._reason("contact.email", kind, term=views.original[span[0] : span[1]], span=span))
        return found

    def _disguised_links(
        self,
        views: TextViews,
        tenant: TenantPolicy,
        kind: str,
        out: list[Reason],
        found: list[tuple[int, int]],
        *,
        form: bool,
    ) -> None:
        """Links whose dots are written as 点, (.), ·, " dot " …: a host with at least one such dot and a known TLD."""
        for m in self._disguised.finditer(views.light):
            text = m.group(0).rstrip(".,;:!?")
            host_part = re.split(r"[/:?#]", text, maxsplit=1)[0]
            if _DISGUISE_MARK.search(host_part) is None:
                continue  # plain dots only: the URL rule reads it
            host = _SEP_ANY.sub(".", host_part).strip(".")
            if any(label.isdigit() and len(label) <= 2 for label in host.split(".")):
                continue  # a time of day (下午3点cn…), not a host
            span = views.from_light(m.start(), m.start() + len(text))
            found.append(span)
            if kind == "verification" and form:
                continue  # verification.link reports it
            if self._domain_in(host, set(self.policy.links.allowed_domains) | set(tenant.allowed_domains)):
                continue
            code = "link.lookalike" if _lookalike(host) else "link.disguised"
            if self._enabled(code):
                out.append(self._reason(code, kind, term=views.original[span[0] : span[1]], span=span))

    @staticmethod
    def _domain_in(host: str, domains: set[str]) -> bool:
        return any(host == d or host.endswith("." + d) for d in domains)

    # -- contacts ------------------------------------------------------------------------------
    def _contacts(self, views: TextViews, tenant: TenantPolicy, kind: str, out: list[Reason]) -> None:
        folded = views.folded
        # Trigger checks (one C scan each) before any per-pattern work: a cue character for WeChat / QQ (or a
        # spoken digit, 洞两拐勾么, which the contact view may read), ten digits in a row for the mobile (11) and
        # landline (>= 10) patterns, "1[3-9]" for a spaced mobile.
        flags = views.flags
        cues = bool(flags & F_CUE) and self._cue_trigger.search(folded) is not None
        numbers = bool(flags & F_DIGITS) and _TEN_DIGITS.search(folded) is not None
        spaced = bool(flags & F_MOBILE) and "1" in views.light and _MOBILE_START.search(views.light) is not None
        if not (cues or numbers or spaced):
            return
        # A heart matters only after a WeChat cue letter, and a spoken digit is in the cue trigger: the contact view
        # is needed only where that trigger fired (not for every text holding ten digits or a "13").
        contact = views.contact() if cues else None
        if contact is not None:
            folded = contact[0]
            numbers = numbers or _TEN_DIGITS.search(folded) is not None
        from_folded = contact[1].span if contact is not None else views.from_folded
        registered = set(tenant.registered_numbers)
        taken: list[tuple[int, int]] = []

        def add(code: str, start: int, end: int, value: str, from_light: bool = False) -> None:
            span = views.from_light(start, end) if from_light else from_folded(start, end)
            if any(a < span[1] and span[0] < b for a, b in taken):
                return
            taken.append(span)
            if self._enabled(code):
                out.append(self._reason(code, kind, term=views.original[span[0] : span[1]], span=span))

        for code, pattern in (("contact.wechat", self._wechat), ("contact.qq", self._qq)) if cues else ():
            for m in pattern.finditer(folded):
                if (m.group("id") or m.group("num")) not in registered:
                    add(code, m.start(), m.end(), m.group(0))
        for pattern in (_MOBILE, _LANDLINE) if numbers else ():
            for m in pattern.finditer(folded):
                number = m.group(1)
                if number in registered:
                    continue
                add("contact.phone", m.start(1), m.end(1), number)
        for m in _MOBILE_SPACED.finditer(views.light) if spaced else ():
            number = re.sub(r"[^0-9]", "", m.group(1))
            if number not in registered:
                add("contact.phone", m.start(1), m.end(1), number, from_light=True)

    # -- verification --------------------------------------------------------------------------
    def _verification(self, views: TextViews, kind: str, links: list[tuple[int, int]], out: list[Reason]) -> None:
        v = self.policy.verification
        body = _SIG_ANY.sub(lambda m: " " * len(m.group(0)), views.light)
        codes = [m for m in self._code.finditer(body) if any(c.isdigit() for c in m.group(1))]
        if len(codes) > 1:
            codes = self._codes_near_cue(body, codes)
        if not codes and self._enabled("verification.no_code"):
            out.append(self._reason("verification.no_code", kind, min=v.code_min, max=v.code_max))
        elif len(codes) > 1 and self._enabled("verification.multiple_codes"):
            span = views.from_light(codes[1].start(), codes[1].end())
            out.append(self._reason("verification.multiple_codes", kind, term=codes[1].group(1), span=span))
        if self._enabled("verification.link"):
            for span in links:
                out.append(self._reason("verification.link", kind, term=views.original[span[0] : span[1]], span=span))
        m = (
            self._marketing_cue.search(views.folded)
            or self._verification_offer.search(views.folded)
            or self._optout_match(views.folded)
            or (_REPLY_SOLICIT.search(views.folded) if "回" in views.folded else None)
        )
        if m and self._enabled("verification.marketing"):
            span = views.from_folded(m.start(), m.end())
            out.append(self._reason("verification.marketing", kind, term=views.original[span[0] : span[1]], span=span))

    def _optout_match(self, folded: str) -> re.Match[str] | None:
        """The opt-out instruction in ``folded``: a verification message carrying one is marketing in disguise."""
        if self._optout_any is not None:
            return self._optout_any.search(folded)
        return next((m for p in self._optout if (m := p.search(folded))), None)

    def _undeclared_marketing(self, views: TextViews, kind: str, out: list[Reason]) -> None:
        """A message sent as a notification whose content is an advert (双11全场5折, 回复1了解详情) still owes its
        recipients an opt-out. Weak cues (请准时到店) do not count here."""
        folded = views.folded
        # A cue that names a job (促销员, 导购员) is no advert.
        m = next((c for c in self._strong_marketing.finditer(folded) if folded[c.end() : c.end() + 1] != "员"), None)
        m = m or (_REPLY_SOLICIT.search(folded) if "回" in folded else None)
        if m is None or self._has_optout(folded) or not self._enabled("marketing.undeclared"):
            return
        span = views.from_folded(m.start(), m.end())
        out.append(
            self._reason("marketing.undeclared", kind, term=views.original[span[0] : span[1]], span=span, declared=kind)
        )

    def _codes_near_cue(self, body: str, codes: list[re.Match[str]]) -> list[re.Match[str]]:
        """The code candidates right after (else right before) a cue such as 验证码.

        Templates carry other 4–6 digit values (注册12306账号, 客服95118); the code variable is the
        value the cue word introduces.
        """
        cues = [(m.start(), m.end()) for m in self._code_cue.finditer(body)]
        if not cues:
            return codes
        after = [c for c in codes if any(0 <= c.start() - end <= _CUE_GAP for _, end in cues)]
        if after:
            return after
        before = [c for c in codes if any(0 <= start - c.end() <= _CUE_GAP for start, _ in cues)]
        return before or codes

    # -- length --------------------------------------------------------------------------------
    def _length(self, text: str, extra_signature: str | None, kind: str, out: list[Reason]) -> tuple[int, int]:
        full = f"【{extra_signature}】{text}" if extra_signature else text
        n = len(full)
        ln = self.policy.length
        single, segment = (ln.gsm7_single, ln.gsm7_segment) if _is_gsm7(full) else (ln.single, ln.segment)
        segments = 1 if n <= single else math.ceil(n / segment)
        if n > ln.max and self._enabled("length.over_limit"):
            out.append(self._reason("length.over_limit", kind, length=n, max=ln.max))
        return n, segments


def _host(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    host = re.split(r"[/:?#]", rest, maxsplit=1)[0]
    return host.rsplit("@", 1)[-1].strip(".")


def _lookalike(host: str) -> bool:
    """A host that borrows an official name (gov, 12123, ETC …) without being an official (.gov.cn) host."""
    if host == "gov.cn" or host.endswith(_OFFICIAL_SUFFIXES):
        return False
    tokens = re.split(r"[.-]", host)
    return any(m in t for t in tokens for m in _OFFICIAL_MARKS) or any(
        t.startswith("etc") or t.endswith("etc") for t in tokens
    )


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


_NOT_GSM7 = re.compile(f"[^{''.join(map(re.escape, sorted(_GSM7)))}]")


def _is_gsm7(text: str) -> bool:
    return _NOT_GSM7.search(text) is None  # one C scan instead of a Python loop per character


def _preimage(norm: Normalizer, targets: str) -> set[str]:
    """Every character whose light view holds one of ``targets``."""
    mapping = norm.light_mapping
    chars = {t for t in targets if ord(t) not in mapping}
    return chars | {chr(cp) for cp, out in mapping.items() if out and any(t in out for t in targets)}


def _starts(texts: list[str]) -> np.ndarray:
    """Where each text starts in ``"\x01".join(texts)``."""
    out = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(np.fromiter(map(len, texts[:-1]), dtype=np.int64, count=len(texts) - 1) + 1, out=out[1:])
    return out
