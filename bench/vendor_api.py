"""What the drop-in vendor endpoints cost per send against smsguard's own batch API, in the same run.

Run: ``.venv/bin/python bench/vendor_api.py [--sends 100]``. One ``smsguard serve`` (embedded defaults, a
temporary data dir, every role: the release and the loopback gateway run alongside), one approved template
without variables, one number per send, sends interleaved in rounds so load hits all three alike:

(a) ``POST /v1/batches`` with ``template_id`` + ``numbers`` (httpx, an API key): the baseline;
(b) Tencent ``SendSms`` through ``tencentcloud-sdk-python-sms`` (TC3-HMAC-SHA256 checked, replay record);
(c) Aliyun ``SendSms`` through ``alibabacloud_dysmsapi20170525`` (ACS3-HMAC-SHA256 checked, nonce record).

Each is a batch created, screened and scheduled before the answer. Reports the median per send and the ratio
to (a); the vendor path adds the signature check, the credential's decryption and the ``vendor_sends`` row.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time

import httpx
from _serve import clean_env, cli, serve, tenant_key

SIGN = "示例商城"




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=100, help="per path")
    parser.add_argument("--port", type=int, default=8197)
    args = parser.parse_args()
    from alibabacloud_dysmsapi20170525 import models as ali
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi.utils_models import Config
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import models as tc
    from tencentcloud.sms.v20210111 import sms_client

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_env(tmp)
        key = tenant_key(env, rate_limit=None)
        tencent_out = cli(env, "key", "vendor", "create", "--tenant", "bench", "--vendor", "tencent")
        aliyun_out = cli(env, "key", "vendor", "create", "--tenant", "bench", "--vendor", "aliyun")
        field = {m[1]: m[2] for m in re.finditer(r"^(\w+):\s+(\S+)$", tencent_out + aliyun_out, re.M)}
        with serve(env, args.port) as (base, _):
            auth = {"Authorization": f"Bearer {key}"}
            template = httpx.post(f"{base}/v1/templates", headers=auth, timeout=60, json={
                "name": "b", "kind": "notification", "signature": SIGN, "body": "您的订单已发货，请注意查收。"}).json()
            assert template["status"] == "approved", template
            tid = template["id"]
            http = httpx.Client(base_url=base, headers=auth, timeout=60)
            tencent = sms_client.SmsClient(
                credential.Credential(field["SecretId"], field["SecretKey"]), "ap-guangzhou",
                ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{args.port}", protocol="http")))
            aliyun = Client(Config(access_key_id=field["AccessKeyId"], access_key_secret=field["AccessKeySecret"],
                                   endpoint=f"127.0.0.1:{args.port}", protocol="http"))
            n = iter(range(10_000_000))

            def number() -> str:
                return f"138{next(n):08d}"

            def baseline() -> None:
                r = http.post("/v1/batches", json={"template_id": tid, "numbers": [number()]})
                assert r.status_code == 201, r.text

            def via_tencent() -> None:
                req = tc.SendSmsRequest()
                req.PhoneNumberSet, req.SmsSdkAppId, req.TemplateId = [number()], field["SmsSdkAppId"], str(tid)
                req.SignName, req.TemplateParamSet = SIGN, []
                assert tencent.SendSms(req).SendStatusSet[0].Code == "Ok"

            def via_aliyun() -> None:
                r = aliyun.send_sms(ali.SendSmsRequest(phone_numbers=number(), sign_name=SIGN,
                                                       template_code=f"SMS_{tid}"))
                assert r.body.code == "OK", r.body

            paths = {"(a) POST /v1/batches (API key)": baseline, "(b) Tencent SDK SendSms": via_tencent,
                     "(c) Aliyun SDK SendSms": via_aliyun}
            times: dict[str, list[float]] = {name: [] for name in paths}
            for fn in paths.values():
                fn()  # warm: first screening, connections
            for _ in range(0, args.sends, 10):
                for name, fn in paths.items():
                    for _ in range(10):
                        start = time.perf_counter()
                        fn()
                        times[name].append(time.perf_counter() - start)
    a = statistics.median(times["(a) POST /v1/batches (API key)"])
    print("| path | vs (a) | median per send (ms) | sends |\n| --- | ---: | ---: | ---: |")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"| {name} | {m / a:.2f}x | {m * 1000:.1f} | {len(t)} |")
    print(f"\nload average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
