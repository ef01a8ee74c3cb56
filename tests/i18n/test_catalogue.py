"""The web UIs' one message catalogue (issue 19 point 4): every message of the templates, the UIs' Python and their
scripts has its Chinese, the catalogue holds nothing no source uses, and a request gets its language from the
switch's cookie, then Accept-Language, then zh-CN."""

from __future__ import annotations

import pytest
from jinja2 import Environment

from smsguard import i18n
from smsguard.i18n._extract import extract, problems, read


def test_every_message_of_the_uis_has_its_chinese() -> None:
    found = problems(read(), extract())
    assert found == [], "run `python -m smsguard.i18n update` and translate:\n" + "\n".join(found)


def test_the_catalogue_keeps_nothing_the_sources_do_not_use() -> None:
    used = {m.id if isinstance(m.id, str) else m.id[0] for m in extract() if m.id}
    kept = {m.id if isinstance(m.id, str) else m.id[0] for m in read() if m.id}
    assert kept - used == set(), "stale messages: run `python -m smsguard.i18n update`"


def test_the_sources_are_really_scanned() -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extract() if m.id}
    # one of each kind of source: a template, a macro shared by both UIs, the console's Python, its script, webauth's
    assert {"Batches", "User name", "choose a CSV file", "(typing…)", "wrong user name or password"} <= ids
    assert len(ids) > 300


@pytest.mark.parametrize(
    ("headers", "language"),
    [
        ({}, "zh-CN"),
        ({"accept-language": "en-US,en;q=0.9"}, "en"),
        ({"accept-language": "zh-TW,zh;q=0.9,en;q=0.8"}, "zh-CN"),
        ({"accept-language": "fr-FR,en;q=0.5,zh;q=0.9"}, "zh-CN"),  # by weight, not by order
        ({"accept-language": "ja,fr"}, "zh-CN"),  # nothing we have: the default
        ({"accept-language": "en", "cookie": "sg_lang=zh-CN"}, "zh-CN"),  # the switch wins over the browser
        ({"cookie": "other=1; sg_lang=en"}, "en"),
        ({"cookie": "sg_lang=de"}, "zh-CN"),  # an unknown value is ignored
    ],
)
def test_the_language_of_a_request(headers: dict[str, str], language: str) -> None:
    assert i18n.language_of(headers) == language


def test_gettext_follows_the_request_language() -> None:
    # outside a UI request (API, CLI, workers): the English ids, as those messages always were
    assert i18n.gettext("batch #%(id)s created: %(state)s", id=7, state="queued") == "batch #7 created: queued"
    assert i18n.ngettext("%(num)s attempt", "%(num)s attempts", 2) == "2 attempts"
    with i18n.use_language("zh-CN"):  # what language_middleware sets for a UI request that chose nothing
        assert i18n.gettext("Batches") == "批次"
        assert i18n.gettext("batch #%(id)s created: %(state)s", id=7, state="排队") == "批次 #7 已创建：排队"
        assert i18n.ngettext("%(num)s attempt", "%(num)s attempts", 2) == "2 次尝试"
    assert i18n.language_of({}) == i18n.DEFAULT_LANGUAGE == "zh-CN"


def test_templates_translate_and_escape() -> None:
    env = Environment(autoescape=True)
    i18n.install(env)
    page = env.from_string('{{ _("Records of the number") }} {{ _("Template %(name)s", name=n) }} {{ language() }}')
    with i18n.use_language("zh-CN"):
        assert page.render(n="<b>") == "号码记录： 模板 &lt;b&gt; zh-CN"
    with i18n.use_language("en"):
        assert page.render(n="x") == "Records of the number Template x en"


def test_the_scripts_get_only_their_own_messages_and_only_in_chinese() -> None:
    js = i18n.js_messages("zh-CN")
    assert js["(typing…)"] == "（输入中…）" and "Batches" not in js  # a template's message stays on the server
    assert i18n.js_messages("en") == {}
