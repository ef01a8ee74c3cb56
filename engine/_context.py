"""Context: a message that warns about a scam is not the scam, and a walk-in job advert is not a job scam.

Anti-fraud notices from police, banks, schools and carriers name the phrases they warn about (刷单返利,
征信修复, 积分兑换现金 …). A lexicon hit of a fraud-like category is *quoted in a warning* when a warning cue
governs it in its own clause — a cue before it (谨防, 本行不会, 请勿 …), a judgement after it (… 都是诈骗,
… 是骗局), or quotation marks in a message framed as a warning (警方提示, 反诈 …). The message is a warning
only when EVERY claim in it is governed that way: each fraud-like lexicon hit and each solicitation phrase
(日赚, 内部渠道, 名额有限 …), and it diverts to no private contact and no link. A scam that merely adds
谨防诈骗 keeps its offer outside any warning's clause, so it stays caught.

A part-time job advert with a walk-in address (招聘 …, 地址：…路88号) and nothing else held against it
(no contact, no link, no lexicon hit, no job-scam phrase such as 押金 or 打字员) is a legitimate advert:
the classifier, trained on corpora where every advert is spam, may not hold it alone.

The neutralized reasons stay in the verdict with action ``pass`` and their exact spans, saying why.
Only messages that have something to neutralize and hold a cue word pay for any of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._rules import TextViews
from ._verdict import Reason

WARNABLE = frozenset({"fraud", "loan", "illegal", "gambling", "drugs"})
"""Lexicon categories an anti-fraud notice quotes."""

# A cue that governs what follows it in the same clause.
_BEFORE = (
    "谨防", "警惕", "提防", "防范", "严防", "识破", "识别", "远离", "拒绝", "抵制", "所谓", "冒充",
    "假冒", "不会要求", "不会以", "不会通过", "不会发送", "不会向", "从不", "绝不", "不会", "请勿", "切勿", "千万不要",
    "千万别", "不要", "勿信", "不要相信", "不要轻信", "请勿轻信", "切勿轻信", "揭秘", "防止", "打击", "严禁", "禁止",
    "不存在", "没有所谓", "一律不", "均不",
)  # fmt: skip
# A judgement that governs what precedes it in the same clause; the universal ones (都是诈骗) reach back over
# commas to the start of the sentence ("凡是要求先交钱的，都是诈骗").
_AFTER = ("诈骗", "骗局", "骗子", "陷阱", "套路", "违法", "非法", "骗钱")
_UNIVERSAL = ("都是诈骗", "均是诈骗", "均为诈骗", "全是诈骗", "一律是诈骗", "都是骗局", "均为骗局", "都是骗子")
# Words that frame the whole message as a warning: with one, a quoted phrase (“征信修复”) counts as quoted.
_FRAME = (
    "警方提示", "警方提醒", "警情通报", "反诈", "防骗", "防诈", "谨防", "警惕", "诈骗", "骗局", "风险提示", "安全提示",
    "温馨提示", "96110",
)  # fmt: skip
# After a 不要-like cue these make an urging, not a warning (千万不要错过, 不要犹豫).
_URGING = re.compile(r"错过|犹豫|等待|担心|怕|迟疑|观望")
# Negated judgements are claims of honesty, not warnings (不是诈骗, 绝非骗局).
_NEGATED = re.compile(r"(?:不是|不属于|绝非|并非|非|无|没有|不)$")
# Solicitation: what a scam offers or urges. Each one must itself sit inside a warning for a message to be one.
_SOLICIT = (
    "日赚", "日入", "月入", "轻松赚", "高额回报", "高回报", "稳赚", "保本", "躺赚", "包过", "包下款", "当天见效",
    "当天下款", "秒到账", "内部渠道", "名额有限", "速来", "私聊", "私信", "加我", "联系我", "咨询我", "扫码",
    "点击领取", "立即办理", "马上办理", "免费领取", "先到先得", "佣金", "返佣", "提成", "找我", "速度", "抓紧",
)  # fmt: skip
_SENTENCE_END = frozenset("。！？!?；;\n")
# A bracket closes a clause too: "(此信息请勿删除)会员凭此短信…" — 请勿 governs 删除, not what follows.
_CLAUSE_END = _SENTENCE_END | frozenset("，,：:)）】」』]")
_QUOTES = {"“": "”", '"': '"', "「": "」", "『": "』", "‘": "’", "'": "'", "《": "》"}
_REACH_AFTER = 16  # characters a cue before its object reaches into its clause (本行不会以“…”为由)
_SCOPE = 30  # characters a judgement after its object reaches back
# A job advert: a recruiting word and a place to walk in to; and what job scams say that employers do not.
_RECRUIT = re.compile(r"招聘|诚聘|急聘|聘请|诚招|急招|招工|兼职|招募.{0,6}[员工师]")
_WALK_IN = re.compile(r"地址|地点|门店|到店|现场面试|前台|携带身份证|带身份证|[0-9]+号|号楼|大厦|广场|路[0-9]")
_JOB_SCAM = re.compile(
    r"押金|保证金|培训费|会费|服装费|体检费|打字员|手工活|在家|足不出户|宝妈|躺赚|刷单|点赞|日赚|高佣|佣金|垫付|返利|无需经验.*日"
    # a way to reach someone other than walking in (a masked or spelled-out number, an id): not walk-in only
    r"|电话|致电|热线|联系|微信|qq|扣扣|加v|详询|咨询|回电|回复|手机"
)


def _alternation(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, sorted(set(words), key=len, reverse=True))))


_BEFORE_RE = _alternation(_BEFORE)
_AFTER_RE = _alternation(_AFTER + _UNIVERSAL)
_FRAME_RE = _alternation(_FRAME)
_SOLICIT_RE = _alternation(_SOLICIT)
# The first characters of every cue: a message holding none of them cannot be a warning (one C scan).
CUE_CHARS = re.compile(f"[{''.join(sorted({w[0] for w in _BEFORE + _AFTER + _UNIVERSAL + _FRAME}))}]")


@dataclass(frozen=True, slots=True)
class _Scope:
    start: int  # original text, half-open
    end: int
    cue: str


def has_warnable(reasons: list[Reason]) -> bool:
    return any(r.category in WARNABLE and r.action != "pass" for r in reasons)


def warning_scopes(views: TextViews) -> list[_Scope] | None:
    """The spans of the original text that warning cues govern, or None when the message is no warning."""
    folded, text = views.folded, views.original
    if CUE_CHARS.search(folded) is None:
        return None
    scopes: list[_Scope] = []
    for m in _BEFORE_RE.finditer(folded):
        if _URGING.match(folded, m.end(), m.end() + 3):
            continue
        a, b = views.from_folded(m.start(), m.end())
        end = b
        while end < len(text) and end - b < _REACH_AFTER and text[end] not in _CLAUSE_END:
            end += 1
        scopes.append(_Scope(a, end, m.group(0)))
    for m in _AFTER_RE.finditer(folded):
        if _NEGATED.search(folded, max(0, m.start() - 3), m.start()):
            continue
        a, b = views.from_folded(m.start(), m.end())
        stops = _SENTENCE_END if m.group(0) in _UNIVERSAL else _CLAUSE_END
        start = a
        while start > 0 and a - start < _SCOPE and text[start - 1] not in stops:
            start -= 1
        scopes.append(_Scope(start, b, m.group(0)))
    if _FRAME_RE.search(folded):
        for i, ch in enumerate(text):
            close = _QUOTES.get(ch)
            if close is not None:
                j = text.find(close, i + 1)
                if j != -1 and j - i <= _SCOPE:
                    scopes.append(_Scope(i, j + 1, f"{ch}…{close}"))
    return scopes or None


def _governing(scopes: list[_Scope], start: int, end: int) -> _Scope | None:
    return next((s for s in scopes if s.start <= start and end <= s.end), None)


def quoted_in_warning(views: TextViews, rule_reasons: list[Reason], lexicon: list[Reason]) -> list[Reason] | None:
    """``lexicon`` with every fraud-like hit turned into a ``pass`` reason when the message is a warning that
    quotes them; None when it is not one (the reasons stand as they are)."""
    if any(r.category in ("contact", "link") and r.action != "pass" for r in rule_reasons):
        return None
    scopes = warning_scopes(views)
    if scopes is None:
        return None
    for m in _SOLICIT_RE.finditer(views.folded):
        a, b = views.from_folded(m.start(), m.end())
        if _governing(scopes, a, b) is None:
            return None  # an offer outside every warning: the warning phrase is decoration
    out: list[Reason] = []
    for r in lexicon:
        if r.category in WARNABLE and r.action != "pass" and r.start is not None and r.end is not None:
            scope = _governing(scopes, r.start, r.end)
            if scope is None:
                return None
            r = Reason(
                code=r.code,
                category=r.category,
                severity=r.severity,
                source=r.source,
                action="pass",
                message=f"{r.message}, quoted in a warning ({scope.cue}), not offered",
                term=r.term,
                start=r.start,
                end=r.end,
            )
        out.append(r)
    return out


def is_walk_in_job_advert(views: TextViews, reasons: list[Reason]) -> bool:
    """A recruiting message with a walk-in place, no job-scam phrase and nothing but the classifier against it."""
    folded = views.folded
    if "聘" not in folded and "招" not in folded and "兼职" not in folded:
        return False
    if any(r.action != "pass" and r.source != "classifier" for r in reasons):
        return False
    return bool(_RECRUIT.search(folded) and _WALK_IN.search(folded) and not _JOB_SCAM.search(folded))
