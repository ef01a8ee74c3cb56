"""Every rule code fires where it should and stays quiet where it should not.

The engine runs on a copy of the repository's policy.yaml (tenant ``demo``: signatures 示例商城 /
示例银行, domains example.com / example.cn, numbers 4008001234 / 02161234567) and a tiny lexicon,
so only the rules under test produce reasons.
"""

from __future__ import annotations

import pytest

from smsguard.engine import RULE_CODES, Engine, Message, Verdict


def screen(engine: Engine, text: str, *, content_only: bool = False, **fields: object) -> Verdict:
    return engine.screen(Message(text=text, **fields), content_only=content_only)  # type: ignore[arg-type]


def codes(engine: Engine, text: str, **kwargs: object) -> list[str]:
    return [r.code for r in screen(engine, text, **kwargs).reasons]  # type: ignore[arg-type]


def reason(verdict: Verdict, code: str):
    (found,) = [r for r in verdict.reasons if r.code == code]
    return found


def test_every_rule_code_is_exercised_below() -> None:
    # Keep this list in step with RULE_CODES: a new rule needs its own tests here.
    assert set(RULE_CODES) == {
        "signature.missing",
        "signature.length",
        "signature.multiple",
        "signature.unregistered",
        "marketing.optout_missing",
        "marketing.undeclared",
        "verification.no_code",
        "verification.multiple_codes",
        "verification.link",
        "verification.marketing",
        "link.not_allowed",
        "link.shortener",
        "link.bare_ip",
        "link.disguised",
        "link.lookalike",
        "contact.phone",
        "contact.wechat",
        "contact.qq",
        "contact.email",
        "length.over_limit",
    }


# -- signature ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "【示例商城】您的订单已发货",
        "您的订单已发货【示例商城】",
        "  【示例商城】您的订单已发货",
        "【示例】您的订单已发货",
    ],
)
def test_signature_ok(shared_engine: Engine, text: str) -> None:
    assert codes(shared_engine, text) == []


def test_signature_missing(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "您的订单已发货")
    assert [r.code for r in verdict.reasons] == ["signature.missing"]
    assert verdict.decision == "block"
    assert codes(shared_engine, "您的【示例商城】订单已发货") == ["signature.missing"]  # not at start or end


def test_signature_passed_as_a_field(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "您的订单已发货", signature="示例商城")
    assert verdict.reasons == []
    assert verdict.length == len("【示例商城】您的订单已发货")  # the gateway adds it, so it is billed


@pytest.mark.parametrize(
    ("signature", "fires"),
    [
        ("某", True),
        ("示例", False),
        ("一二三四五六七八九十一二", False),
        ("一二三四五六七八九十一二三", True),
        ("  ", True),
    ],
)
def test_signature_length(shared_engine: Engine, signature: str, fires: bool) -> None:
    verdict = screen(shared_engine, f"【{signature}】您的订单已发货")
    assert ("signature.length" in [r.code for r in verdict.reasons]) is fires
    if fires:
        r = reason(verdict, "signature.length")
        assert (r.start, r.end) == (0, len(signature) + 2)
        assert "2–12" in r.message
    # The same signature passed as a field is checked the same way.
    assert ("signature.length" in codes(shared_engine, "您的订单已发货", signature=signature)) is fires


def test_signature_multiple(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例商城】【另一家】您的订单已发货") == ["signature.multiple"]
    assert codes(shared_engine, "【示例商城】您的订单已发货【示例商城】") == ["signature.multiple"]


def test_signature_unregistered(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "【某商城】您的订单已发货", tenant="demo")
    r = reason(verdict, "signature.unregistered")
    assert (r.term, r.start, r.end) == ("某商城", 0, 5)
    assert verdict.decision == "block"
    assert codes(shared_engine, "【示例商城】您的订单已发货", tenant="demo") == []
    assert codes(shared_engine, "您的订单已发货", tenant="demo", signature="某商城") == ["signature.unregistered"]
    assert codes(shared_engine, "您的订单已发货", tenant="demo", signature="示例银行") == []
    # Without a tenant (or for a tenant with no registered signatures) there is nothing to check against.
    assert codes(shared_engine, "【某商城】您的订单已发货") == []
    assert codes(shared_engine, "【某商城】您的订单已发货", tenant="unknown") == []


# -- marketing ---------------------------------------------------------------------------------


def test_marketing_without_optout(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "【示例商城】新品上市，全场5折")
    assert verdict.kind == "marketing"
    assert [r.code for r in verdict.reasons] == ["marketing.optout_missing"]
    assert verdict.decision == "block"


@pytest.mark.parametrize(
    "optout", ["回T退订", "回TD退订", "退订回T", "拒收请回复R", "回复退订", "回 T 退 訂", "回ｔ退订", "退订请回复N"]
)
def test_marketing_with_optout(shared_engine: Engine, optout: str) -> None:
    assert codes(shared_engine, f"【示例商城】新品上市，全场5折，{optout}") == []


def test_optout_rule_only_for_marketing(shared_engine: Engine) -> None:
    # An advert sent as a notification is reported as such (issue 21), not as marketing without an opt-out.
    assert codes(shared_engine, "【示例商城】新品上市，全场5折", kind="notification") == ["marketing.undeclared"]
    assert codes(shared_engine, "【示例商城】新品种已到货", kind="notification") == []
    assert codes(shared_engine, "【示例商城】您的订单已发货", kind="marketing") == ["marketing.optout_missing"]


# -- verification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "【示例银行】您的验证码是123456，5分钟内有效。",
        "【示例银行】验证码：8F3K，请勿泄露",
        "【示例银行】您的验证码是1234",
    ],
)
def test_verification_ok(shared_engine: Engine, text: str) -> None:
    verdict = screen(shared_engine, text)
    assert verdict.kind == "verification"
    assert verdict.reasons == []
    assert verdict.decision == "pass"


def test_verification_no_code(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例银行】您的验证码已发送，请查收") == ["verification.no_code"]
    assert codes(shared_engine, "【示例银行】您的验证码是123，请查收") == ["verification.no_code"]  # too short
    assert codes(shared_engine, "【示例银行】您的验证码是1234567，请查收") == ["verification.no_code"]  # too long
    assert codes(shared_engine, "【示例银行】您的验证码是ABCDE，请查收") == ["verification.no_code"]  # no digit


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("【示例银行】验证码123456，动态码654321，请勿泄露", None),  # two codes, each after a cue
        ("【示例银行】您的登录口令是123456或654321", "verification"),  # no cue at all: every code counts
    ],
)
def test_verification_multiple_codes(shared_engine: Engine, text: str, kind: str | None) -> None:
    r = reason(screen(shared_engine, text, kind=kind), "verification.multiple_codes")
    assert r.term == "654321"
    assert text[r.start : r.end] == "654321"


def test_verification_link(shared_engine: Engine) -> None:
    text = "【示例银行】您的验证码是123456，详见 https://example.com/x"
    verdict = screen(shared_engine, text, tenant="demo")
    r = reason(verdict, "verification.link")
    assert text[r.start : r.end] == "https://example.com/x"
    assert verdict.decision == "block"
    # The link is reported once, as a verification problem, even when its domain is allowed.
    assert [r.code for r in verdict.reasons] == ["verification.link"]


def test_verification_marketing(shared_engine: Engine) -> None:
    text = "【示例银行】您的验证码是123456，新品大促进行中"
    verdict = screen(shared_engine, text)
    r = reason(verdict, "verification.marketing")
    assert text[r.start : r.end] in ("新品", "大促")
    assert verdict.decision == "block"


def test_verification_rules_only_for_verification(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例银行】验证码服务已开通", kind="notification") == []


# -- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://example.com/a", "http://m.example.com/a?b=1", "example.cn/x", "www.example.com"]
)
def test_link_allowed_for_the_tenant(shared_engine: Engine, url: str) -> None:
    assert codes(shared_engine, f"【示例商城】详情 {url} 查看", tenant="demo") == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://evil.com/a", "link.not_allowed"),
        ("www.evil.cn", "link.not_allowed"),
        ("evil.top/a", "link.not_allowed"),
        ("https://example.com.evil.com/a", "link.not_allowed"),
        ("t.cn/abc", "link.shortener"),
        ("https://bit.ly/xyz", "link.shortener"),
        ("http://1.2.3.4/abc", "link.bare_ip"),
        ("http://192.168.1.1:8080/x", "link.bare_ip"),
    ],
)
def test_link_flagged(shared_engine: Engine, url: str, code: str) -> None:
    text = f"【示例商城】详情 {url} 查看"
    verdict = screen(shared_engine, text, tenant="demo")
    r = reason(verdict, code)
    assert text[r.start : r.end] == url
    assert r.term == url


def test_link_allowed_only_for_its_tenant(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例商城】详情 https://example.com/a 查看") == ["link.not_allowed"]


def test_full_width_link_spans_the_original(shared_engine: Engine) -> None:
    text = "【示例商城】访问 ｈｔｔｐｓ：／／ｅｖｉｌ．ｃｏｍ／ａ 查看"
    r = reason(screen(shared_engine, text), "link.not_allowed")
    assert text[r.start : r.end] == "ｈｔｔｐｓ：／／ｅｖｉｌ．ｃｏｍ／ａ"


@pytest.mark.parametrize("text", ["【示例商城】版本1.2.3发布", "【示例商城】价格12.50元", "【示例商城】请于3.15前取件"])
def test_no_link_false_positives(shared_engine: Engine, text: str) -> None:
    assert codes(shared_engine, text) == []


def test_email_is_a_contact_not_a_link(shared_engine: Engine) -> None:
    text = "【示例商城】联系 abc.def@mail.evil.com 了解"
    r = reason(screen(shared_engine, text), "contact.email")
    assert text[r.start : r.end] == "abc.def@mail.evil.com"
    assert codes(shared_engine, text) == ["contact.email"]


# -- contacts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "covered"),
    [
        ("13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("一三八零零一三八零零零", "一三八零零一三八零零零"),
        ("壹叁捌零零壹叁捌零零零", "壹叁捌零零壹叁捌零零零"),
        ("①③⑧⓪⓪①③⑧⓪⓪⓪", "①③⑧⓪⓪①③⑧⓪⓪⓪"),
        ("１３８００１３８０００", "１３８００１３８０００"),
        ("138 0013 8000", "138 0013 8000"),
        ("138-0013-8000", "138-0013-8000"),
        ("1 3 8 0 0 1 3 8 0 0 0", "1 3 8 0 0 1 3 8 0 0 0"),
        ("13800l38OOO", None),  # l is not a digit look-alike; the O run would be but 1 3 8 0 0 l breaks it
        ("02161234567", "02161234567"),
        ("021-61234567", "021-61234567"),
    ],
)
def test_contact_phone(shared_engine: Engine, number: str, covered: str | None) -> None:
    text = f"【示例商城】您的订单已发货，有问题请联系{number}"
    verdict = screen(shared_engine, text)
    phones = [r for r in verdict.reasons if r.code == "contact.phone"]
    if covered is None:
        assert phones == []
        return
    assert len(phones) == 1
    assert text[phones[0].start : phones[0].end] == covered
    assert verdict.decision == "review"  # by_kind: a notification with a phone number is reviewed


def test_contact_phone_blocks_in_marketing(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "【示例商城】新品上市，咨询13800138000，回T退订")
    assert [r.code for r in verdict.reasons] == ["contact.phone"]
    assert verdict.decision == "block"


@pytest.mark.parametrize("number", ["4008001234", "02161234567", "021-61234567", "021 6123 4567"])
def test_registered_number_is_not_a_contact(shared_engine: Engine, number: str) -> None:
    text = f"【示例商城】您的订单已发货，客服电话{number}"
    assert codes(shared_engine, text, tenant="demo") == []


def test_registered_numbers_belong_to_their_tenant(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例商城】客服电话02161234567") == ["contact.phone"]


@pytest.mark.parametrize("text", ["【示例商城】订单号1234567已发货", "【示例商城】订单号12345678901234已发货"])
def test_not_a_phone_number(shared_engine: Engine, text: str) -> None:
    assert codes(shared_engine, text) == []


@pytest.mark.parametrize(
    ("written", "covered"),
    [
        ("微信18106933192", "微信18106933192"),
        ("加V abc12345", "加V abc12345"),
        ("加v：abc12345", "加v：abc12345"),
        ("➕薇 abc12345", "➕薇 abc12345"),
        ("➕V abc12345", "➕V abc12345"),
        ("威信：abc12345", "威信：abc12345"),
        ("微信号是 abc12345", "微信号是 abc12345"),
        ("vx: abcde1", "vx: abcde1"),
        ("ＶＸ：ａｂｃｄｅ１", "ＶＸ：ａｂｃｄｅ１"),
        ("徽 信 abc12345", "徽 信 abc12345"),
    ],
)
def test_contact_wechat(shared_engine: Engine, written: str, covered: str) -> None:
    text = f"【示例商城】领取福利请{written}，谢谢"
    verdict = screen(shared_engine, text, kind="notification")
    r = reason(verdict, "contact.wechat")
    assert text[r.start : r.end] == covered
    assert verdict.decision == "block"


@pytest.mark.parametrize(
    ("written", "covered"),
    [
        ("QQ 12345678", "QQ 12345678"),
        ("扣扣：12345678", "扣扣：12345678"),
        ("加Q 123456", "加Q 123456"),
        ("q号123456", "q号123456"),
    ],
)
def test_contact_qq(shared_engine: Engine, written: str, covered: str) -> None:
    text = f"【示例商城】领取福利请{written}，谢谢"
    r = reason(screen(shared_engine, text, kind="notification"), "contact.qq")
    assert text[r.start : r.end] == covered


@pytest.mark.parametrize(
    "text", ["【示例商城】关注微信公众号，使用微信支付", "【示例商城】支持QQ钱包付款", "【示例商城】VIP会员日"]
)
def test_no_contact_false_positives(shared_engine: Engine, text: str) -> None:
    assert [c for c in codes(shared_engine, text, kind="notification") if c.startswith("contact.")] == []


def test_seed_wechat_line_in_an_ad_blocks(shared_engine: Engine) -> None:
    # The seed line: an ad that diverts to 微信18106933192 must be blocked.
    text = "【示例商城】新品上市，加微信18106933192领优惠券，回T退订"
    verdict = screen(shared_engine, text)
    assert verdict.kind == "marketing"
    assert verdict.decision == "block"
    r = reason(verdict, "contact.wechat")
    assert "18106933192" in text[r.start : r.end]
    # Content alone, with no signature and no kind, it still blocks.
    assert screen(shared_engine, "微信18106933192", content_only=True).decision == "block"


def test_one_span_is_one_contact(shared_engine: Engine) -> None:
    # 微信18106933192 is a WeChat id; the phone pattern must not report the same characters again.
    assert codes(shared_engine, "【示例商城】微信18106933192", kind="notification") == ["contact.wechat"]


# -- length ------------------------------------------------------------------------------------

_SIG = "【示例商城】"


@pytest.mark.parametrize(("total", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (500, 8)])
def test_length_ucs2_segments(shared_engine: Engine, total: int, segments: int) -> None:
    text = _SIG + "好" * (total - len(_SIG))
    verdict = screen(shared_engine, text)
    assert (verdict.length, verdict.segments) == (total, segments)
    assert verdict.reasons == []


@pytest.mark.parametrize(("total", "segments"), [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_length_gsm7_segments(shared_engine: Engine, total: int, segments: int) -> None:
    text = "a" * total  # pure GSM-7 text (English, no signature: content only)
    verdict = screen(shared_engine, text, content_only=True)
    assert (verdict.length, verdict.segments) == (total, segments)


def test_non_gsm7_ascii_counts_as_ucs2(shared_engine: Engine) -> None:
    # [ and ] are not in the GSM-7 basic set.
    verdict = screen(shared_engine, "[x]" + "a" * 157, content_only=True)
    assert (verdict.length, verdict.segments) == (160, 3)


def test_signature_field_counts_towards_length(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "好" * 65, signature="示例商城")
    assert (verdict.length, verdict.segments) == (71, 2)


def test_over_the_limit_is_blocked_with_a_clear_message(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, _SIG + "好" * 495)
    r = reason(verdict, "length.over_limit")
    assert r.message == "message is 501 characters, over the 500 character limit"
    assert verdict.decision == "block"
    assert r.action == "block"
    # Content-only screening still enforces the limit: it is a content rule.
    assert "length.over_limit" in codes(shared_engine, "好" * 501, content_only=True)
    assert codes(shared_engine, _SIG + "好" * 494) == []


# -- content_only ------------------------------------------------------------------------------


def test_content_only_skips_form_rules(shared_engine: Engine) -> None:
    form_failures = [
        "您的订单已发货",  # signature.missing
        "【某】新品上市，全场5折",  # signature.length, marketing.optout_missing
        "【示例银行】您的验证码已发送",  # verification.no_code
        "【示例银行】您的验证码是123456，新品大促",  # verification.marketing
    ]
    for text in form_failures:
        assert codes(shared_engine, text) != []
        assert codes(shared_engine, text, content_only=True) == []
    assert codes(shared_engine, "【某商城】您的订单已发货", tenant="demo", content_only=True) == []


def test_content_only_keeps_content_rules(shared_engine: Engine) -> None:
    text = "新品上市 详情 t.cn/abc 加微信abc12345 咨询13800138000"
    assert set(codes(shared_engine, text, content_only=True)) == {"link.shortener", "contact.wechat", "contact.phone"}


def test_content_only_reports_links_in_verification_messages(shared_engine: Engine) -> None:
    # With form rules off, verification.link is not reported, so the link rule must report it.
    text = "【示例银行】您的验证码是123456，详见 t.cn/abc"
    assert codes(shared_engine, text, content_only=True) == ["link.shortener"]


# -- kind inference ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("【示例银行】您的验证码是123456", "verification"),
        ("【示例银行】您的動態碼是123456", "verification"),  # traditional characters fold
        ("【示例银行】your verification code is 123456", "verification"),
        ("【示例商城】新品上市，全场5折，回T退订", "marketing"),
        ("【示例商城】会员日限时秒杀", "marketing"),
        ("【示例商城】本周活动，回T退订", "marketing"),  # an opt-out instruction marks marketing
        ("【示例商城】您的订单已发货", "notification"),
    ],
)
def test_kind_inference(shared_engine: Engine, text: str, kind: str) -> None:
    verdict = screen(shared_engine, text)
    assert verdict.kind == kind
    assert verdict.kind_inferred is True


def test_explicit_kind_wins(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "【示例银行】您的验证码是123456", kind="notification")
    assert verdict.kind == "notification"
    assert verdict.kind_inferred is False


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("【示例商城】尊敬的会员，双11全场5折，抢购进行中", "5折"),
        ("【示例商城】您有一张50元券待领取，回复1了解详情", "回复1了解"),
        ("【示例商城】账户积分已更新，回复H获取帮助", "回复H获取"),
    ],
)
def test_marketing_undeclared(shared_engine: Engine, text: str, term: str) -> None:
    verdict = screen(shared_engine, text, kind="notification")
    r = reason(verdict, "marketing.undeclared")
    assert text[r.start : r.end] == term and r.term == term
    assert "notification" in r.message and verdict.decision == "block"
    # With an opt-out it is a compliant advert whatever it calls itself; a weak cue (到店) is no advert.
    assert "marketing.undeclared" not in codes(shared_engine, text + "，回T退订", kind="notification")
    assert codes(shared_engine, "【示例商城】您预订的座位已确认，请准时到店。", kind="notification") == []


def test_reply_solicitation_makes_an_inferred_kind_marketing(shared_engine: Engine) -> None:
    verdict = screen(shared_engine, "【示例商城】您有一张新券，回复H获取帮助")
    assert verdict.kind == "marketing"
    assert [r.code for r in verdict.reasons] == ["marketing.optout_missing"]
    assert screen(shared_engine, "【示例商城】您的预约已登记，回复1确认，回复2取消").kind == "notification"


@pytest.mark.parametrize(
    ("text", "link"),
    [
        ("【示例银行】账户异常，请登录 abc-bank dot com 核实", "abc-bank dot com"),
        ("【示例银行】账户异常，请登录 abcbank点com/login 核实", "abcbank点com/login"),
        ("【示例银行】账户异常，请登录 abcbank(.)cn 核实", "abcbank(.)cn"),
        ("【示例银行】账户异常，请登录 www·abcbank·net 核实", "www·abcbank·net"),
        ("【示例银行】账户异常，请登录 abcbank丶top 核实", "abcbank丶top"),
    ],
)
def test_link_disguised(shared_engine: Engine, text: str, link: str) -> None:
    verdict = screen(shared_engine, text)
    r = reason(verdict, "link.disguised")
    assert text[r.start : r.end] == link and r.term == link
    assert verdict.decision == "block"


def test_disguised_link_rule_leaves_times_and_plain_links_alone(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【示例银行】会议于下午3点cn大厦举行") == []
    assert codes(shared_engine, "【示例银行】详见 https://example.com/a", tenant="demo") == []
    # A plain dot is the URL rule's: reported once, as not allowed, not as disguised.
    assert codes(shared_engine, "【示例银行】详见 abcbank.com") == ["link.not_allowed"]


@pytest.mark.parametrize(
    ("text", "link"),
    [
        ("【交管】您有违章未处理，请登录 12123-gov(.)top 处理", "12123-gov(.)top"),
        ("【高速】您的ETC已停用，请访问 etc-renzheng.vip 认证", "etc-renzheng.vip"),
        ("【税务】您有退税待领取：https://gov.cn-tax.xyz/t", "https://gov.cn-tax.xyz/t"),
        ("【高速】ETC认证：chinaetc点com", "chinaetc点com"),
    ],
)
def test_link_lookalike(shared_engine: Engine, text: str, link: str) -> None:
    verdict = screen(shared_engine, text)
    r = reason(verdict, "link.lookalike")
    assert text[r.start : r.end] == link
    assert verdict.decision == "block"


def test_official_government_hosts_are_not_lookalikes(shared_engine: Engine) -> None:
    assert codes(shared_engine, "【交管12123】详见 https://gab.122.gov.cn/m") == ["link.not_allowed"]
