"""The result codes customers see (issue 18, point 3): the tables in the CMPP and SMPP servers' docstrings and in
the README list exactly the codes the servers answer, so the documented mapping cannot drift from the code."""

from __future__ import annotations

import re

from smsguard.engine import PROJECT_ROOT
from smsguard.sending import _cmpp_server, _smpp_server


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_the_cmpp_results_documented_are_the_ones_answered() -> None:
    answered = set(_cmpp_server._RESULTS.values()) | {_cmpp_server.RESULT_FLOW_CONTROL, 9}
    doc = _cmpp_server.__doc__ or ""
    in_docstring = {int(m) for m in re.findall(r"^(\d+) {2,}\S", doc, re.M)}
    readme = _section((PROJECT_ROOT / "README.md").read_text("utf-8"), "SUBMIT_RESP.Result", "**SMPP 3.4**")
    in_readme = {int(m) for m in re.findall(r"^\| (\d+) \|", readme, re.M)}
    assert in_docstring == answered == in_readme
    assert _cmpp_server._RESULTS["blocked"] == 20 and _cmpp_server._RESULTS["opted_out"] == 21
    assert "reserved" in re.search(r"^22 .*$", doc, re.M).group(0)  # type: ignore[union-attr]


def test_the_smpp_statuses_documented_are_the_ones_answered() -> None:
    s = _smpp_server
    answered = set(s.STATUSES.values()) | {s.ESME_RTHROTTLED, s.ESME_RMSGQFUL, s.ESME_RSYSERR}
    doc = s.__doc__ or ""
    in_docstring = {int(m, 16) for m in re.findall(r"^0x([0-9A-Fa-f]{8}) ", doc, re.M)}
    readme = _section((PROJECT_ROOT / "README.md").read_text("utf-8"), "submit_sm_resp command_status", "**Reports")
    in_readme = {int(m, 16) for m in re.findall(r"^\| 0x([0-9A-Fa-f]{8})", readme, re.M)}
    assert in_docstring == answered == in_readme
    assert (s.STATUSES["blocked"], s.STATUSES["opted_out"], s.STATUSES["no_budget"]) == (0x400, 0x401, 0x403)
