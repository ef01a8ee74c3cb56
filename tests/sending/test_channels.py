"""channels.yaml: typed, errors naming the key path, password references, the adapter registry, routing, and
``smsguard channel check`` against the real CMPP / SMPP / HTTP peers."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from sending_helpers import run
from sending_peers.processes import CMPP_ACCOUNT, HTTP_TOKEN, SMPP_ACCOUNT, cmpp_peer, http_peer, smpp_peer

from smsguard.engine import PROJECT_ROOT
from smsguard.sending import CmppGateway, HttpGateway, LoopbackGateway, SgipGateway, SmgpGateway, SmppGateway
from smsguard.sending._channels import (
    ADAPTERS,
    DEFAULT_CHANNELS,
    ChannelRouter,
    ChannelsError,
    ChannelSpec,
    build_gateway,
    load_channels,
    parse_channels,
    register_adapter,
)
from smsguard.sending._gateway_role import check_channel

PEER_FACTORIES = {"cmpp": cmpp_peer, "smpp": smpp_peer, "http": http_peer}

EXAMPLE = PROJECT_ROOT / "channels.example.yaml"


def _error(text: str) -> ChannelsError:
    with pytest.raises(ChannelsError) as e:
        parse_channels(text.encode())
    return e.value


def test_the_shipped_example_parses_and_builds_every_adapter(tmp_path: Path) -> None:
    specs = load_channels(EXAMPLE)
    assert {s.protocol for s in specs} >= {"smpp", "cmpp", "sgip", "smgp", "http", "loopback"}
    env = {s.password_env: "x" for s in specs if s.password_env}
    (tmp_path / "secret").write_text("x\n")
    specs = [msgspec.structs.replace(s, password_file=str(tmp_path / "secret")) if s.password_file else s
             for s in specs]
    kinds = {type(build_gateway(s, env, index=i)) for i, s in enumerate(specs)}
    assert {SmppGateway, CmppGateway, SgipGateway, SmgpGateway, HttpGateway, LoopbackGateway} <= kinds


def test_no_file_means_one_loopback_channel() -> None:
    assert load_channels(None) == DEFAULT_CHANNELS
    assert [s.protocol for s in DEFAULT_CHANNELS] == ["loopback"]


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ("channels:\n  - {name: a, protocol: smpp, host: h, port: abc}\n", "channels.yaml: $.channels[0].port",
         "channels.schema"),
        ("channels:\n  - {name: a, protocol: loopback}\n  - {name: b, protocol: smpp, host: h, port: 99999}\n",
         "channels.yaml: $.channels[1].port", "channels.value"),
        ("channels:\n  - {name: a, protocol: ucp, host: h, port: 1}\n", "channels.yaml: $.channels[0].protocol",
         "channels.value"),
        ("channels:\n  - {name: a, protocol: cmpp, port: 7890}\n", "channels.yaml: $.channels[0].host",
         "channels.value"),
        ("channels:\n  - {name: a, protocol: loopback, carriers: [mobile, tietong]}\n",
         "channels.yaml: $.channels[0].carriers[1]", "channels.value"),
        ("channels:\n  - {name: a, protocol: loopback, ranges: ['138x']}\n",
         "channels.yaml: $.channels[0].ranges[0]", "channels.value"),
        ("channels:\n  - {name: a, protocol: loopback, receipts: first_part}\n",
         "channels.yaml: $.channels[0].receipts", "channels.schema"),
        ("channels:\n  - {name: a, protocol: loopback, password: hunter2}\n", "channels.yaml: $.channels[0]",
         "channels.schema"),
        ("channels:\n  - {name: a, protocol: loopback}\n  - {name: a, protocol: loopback}\n",
         "channels.yaml: $.channels[1].name", "channels.value"),
        ("channels: []\n", "channels.yaml: $.channels", "channels.value"),
        ("channels:\n  - {name: a, protocol: loopback, carriers: [mobile, unicom, telecom]}\n",
         "channels.yaml: $.channels", "channels.value"),  # 'other' (e.g. 192 广电) would never be sent
        ("channels: [\n", "channels.yaml", "channels.syntax"),
    ],
)
def test_errors_name_the_key_path(text: str, where: str, code: str) -> None:
    e = _error(text)
    assert (e.where, e.code) == (where, code), str(e)


def test_a_password_in_the_file_is_refused_by_name() -> None:
    e = _error("channels:\n  - {name: a, protocol: loopback, password: hunter2}\n")
    assert "password" in e.message


def test_password_references_resolve_from_env_or_file(tmp_path: Path) -> None:
    spec = ChannelSpec(name="c", protocol="cmpp", host="h", port=7890, account="901234", password_env="CMPP_PW")
    gw = build_gateway(spec, {"CMPP_PW": "s3cret"})
    assert isinstance(gw, CmppGateway) and gw.secret == "s3cret" and gw.sp_id == "901234"
    with pytest.raises(ChannelsError) as e:
        build_gateway(spec, {}, index=2)
    assert e.value.where == "channels.yaml: $.channels[2].password_env" and e.value.code == "channels.secret"
    secret = tmp_path / "smpp.secret"
    secret.write_text("from-file\n")
    spec = ChannelSpec(name="s", protocol="smpp", host="h", port=2775, account="sys", password_file=str(secret))
    assert build_gateway(spec, {}).password == "from-file"  # type: ignore[attr-defined]
    missing = ChannelSpec(name="s", protocol="smpp", host="h", port=2775, password_file=str(tmp_path / "nope"))
    with pytest.raises(ChannelsError) as e:
        build_gateway(missing, {})
    assert e.value.where == "channels.yaml: $.channels[0].password_file"


def test_http_token_and_field_mapping_come_from_the_file() -> None:
    [spec] = parse_channels(
        b"channels:\n  - name: h\n    protocol: http\n    url: https://sms.example.com/api\n"
        b"    password_env: TOKEN\n    options: {id_field: data.msgid, poll_interval: 2}\n"
    )
    gw = build_gateway(spec, {"TOKEN": "t0k"})
    assert isinstance(gw, HttpGateway)
    assert gw.config.headers == {"Authorization": "Bearer t0k"}
    assert gw.config.id_field == "data.msgid" and gw.config.poll_interval == 2
    [bad] = parse_channels(b"channels:\n  - {name: h, protocol: http, url: 'http://x', options: {timeout: slow}}\n")
    with pytest.raises(ChannelsError) as e:
        build_gateway(bad, {})
    assert e.value.where.startswith("channels.yaml: $.channels[0].options")


def test_an_unknown_adapter_option_names_its_key() -> None:
    [spec] = parse_channels(b"channels:\n  - {name: s, protocol: smpp, host: h, port: 1, options: {windw: 3}}\n")
    with pytest.raises(ChannelsError) as e:
        build_gateway(spec, {})
    assert e.value.where == "channels.yaml: $.channels[0].options" and "windw" in e.value.message


def test_a_new_protocol_registers_its_adapter() -> None:
    built: list[ChannelSpec] = []

    def build_sgip(spec: ChannelSpec, password: str) -> LoopbackGateway:
        built.append(spec)
        return LoopbackGateway(spec.name, window=spec.window)

    register_adapter("sgip-test", build_sgip)
    try:
        [spec] = parse_channels(b"channels:\n  - {name: u, protocol: sgip-test, host: h, port: 8801, window: 7}\n")
        assert build_gateway(spec, {}).window == 7 and built == [spec]
        e = _error("channels:\n  - {name: u, protocol: sgip-test}\n")
        assert e.where == "channels.yaml: $.channels[0].host"
    finally:
        ADAPTERS.pop("sgip-test")


def test_routing_ranges_then_carriers_by_priority_and_weight() -> None:
    specs = parse_channels(b"""
channels:
  - {name: cm-a, protocol: loopback, carriers: [mobile], priority: 10, weight: 3}
  - {name: cm-b, protocol: loopback, carriers: [mobile], priority: 10, weight: 1}
  - {name: backup, protocol: loopback, priority: 50}
  - {name: vip, protocol: loopback, ranges: ['1380013'], priority: 1}
  - {name: ct, protocol: loopback, carriers: [telecom], priority: 10}
""")
    router = ChannelRouter(specs, rng=random.Random(7))
    assert router.candidates("13800138000")[0] == "vip"  # its number range first
    assert router.candidates("13800138000")[-1] == "backup"
    assert router.candidates("+8618912345678") == ("ct", "backup")
    assert router.candidates("13012345678") == ("backup",)  # unicom: only the catch-all
    firsts = Counter(router.candidates("13912345678")[0] for _ in range(4000))
    assert set(firsts) == {"cm-a", "cm-b"}
    assert 2.4 < firsts["cm-a"] / firsts["cm-b"] < 3.8  # weight 3 : 1 (expected 3.0)
    assert all(router.candidates("13912345678")[2] == "backup" for _ in range(50))


def test_check_binds_and_unbinds_each_real_peer(peers, tmp_path: Path) -> None:
    for kind in ("cmpp", "smpp", "http"):
        if kind not in peers:
            peers[kind] = PEER_FACTORIES[kind]().start()
    env = {"CMPP_PW": CMPP_ACCOUNT[1], "SMPP_PW": SMPP_ACCOUNT[1], "HTTP_TOKEN": HTTP_TOKEN}
    specs = [
        ChannelSpec(name="cm", protocol="cmpp", host="127.0.0.1", port=peers["cmpp"].port, account=CMPP_ACCOUNT[0],
                    password_env="CMPP_PW", source="106900"),
        ChannelSpec(name="sm", protocol="smpp", host="127.0.0.1", port=peers["smpp"].port,
                    account=SMPP_ACCOUNT[0], password_env="SMPP_PW"),
        ChannelSpec(name="ht", protocol="http", url=f"http://127.0.0.1:{peers['http'].port}",
                    password_env="HTTP_TOKEN"),
        ChannelSpec(name="cm-wrong", protocol="cmpp", host="127.0.0.1", port=peers["cmpp"].port,
                    account=CMPP_ACCOUNT[0], password_env="WRONG"),
        ChannelSpec(name="closed", protocol="smpp", host="127.0.0.1", port=1, account="x"),
    ]
    rows = [run(check_channel(s, index=i, env={**env, "WRONG": "nope"}, timeout=5)) for i, s in enumerate(specs)]
    by = {r["channel"]: r for r in rows}
    assert by["cm"]["ok"] and by["cm"]["detail"] == "connected, bound and unbound"
    assert by["sm"]["ok"] and by["ht"]["ok"]
    assert not by["cm-wrong"]["ok"] and "CONNECT refused" in by["cm-wrong"]["detail"]
    assert not by["closed"]["ok"]


def test_channel_check_command_reports_per_channel_and_fails_on_a_bad_one(peers, tmp_path: Path) -> None:
    if "cmpp" not in peers:
        peers["cmpp"] = PEER_FACTORIES["cmpp"]().start()
    path = tmp_path / "channels.yaml"
    path.write_text(
        "channels:\n"
        f"  - {{name: cm, protocol: cmpp, host: 127.0.0.1, port: {peers['cmpp'].port}, account: '{CMPP_ACCOUNT[0]}',"
        " password_env: CMPP_PW}\n"
        "  - {name: lo, protocol: loopback}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SMSGUARD_CHANNELS": str(path), "CMPP_PW": CMPP_ACCOUNT[1],
           "SMSGUARD_DATA_DIR": str(tmp_path)}
    ok = subprocess.run([sys.executable, "-m", "smsguard", "channel", "check"], env=env, capture_output=True,
                        text=True, timeout=60, cwd=PROJECT_ROOT)
    assert ok.returncode == 0, ok.stderr
    assert [line.split()[:2] for line in ok.stdout.splitlines()] == [["ok", "cm"], ["ok", "lo"]]
    env["CMPP_PW"] = "wrong"
    bad = subprocess.run([sys.executable, "-m", "smsguard", "channel", "check"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=PROJECT_ROOT)
    assert bad.returncode == 1 and bad.stdout.splitlines()[0].startswith("FAIL cm")
    del env["CMPP_PW"]
    missing = subprocess.run([sys.executable, "-m", "smsguard", "channel", "check"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=PROJECT_ROOT)
    assert "environment variable CMPP_PW is not set" in missing.stdout and "Traceback" not in missing.stderr
    path.write_text("channels:\n  - {name: cm, protocol: cmpp, port: 7890}\n")
    broken = subprocess.run([sys.executable, "-m", "smsguard", "channel", "list"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=PROJECT_ROOT)
    assert broken.returncode == 2
    assert broken.stderr.strip() == "smsguard: channels.yaml: $.channels[0].host: required for protocol cmpp " \
                                    "[channels.value]"
