"""Drop-in Tencent Cloud SMS and Aliyun SMS endpoints (issue 17): the vendors' own SDKs, pointed at smsguard,
send through smsguard's tenants, templates, screening, review, opt-outs, caps and channels.

    cred, secret = create_credential(db, vault, "acme", "tencent")   # `smsguard key vendor create`
    tencent.handle(ctx, method=…, query=…, headers=…, body=…, now=time.time())   # {"Response": …}
    aliyun.handle(ctx, method=…, path=…, query=…, form=…, headers=…, body=…, now=…)  # (status, body)
"""

from . import _aliyun as aliyun
from . import _tencent as tencent
from ._cmpp import (
    BatchSubmitHandler,
    CmppListing,
    GroupedSubmitHandler,
    create_account,
    list_accounts,
    live_accounts,
    mark_mo_delivered,
    mark_reported,
    pending_mo,
    pending_reports,
    revoke_account,
)
from ._credentials import (
    Credential,
    CredentialListing,
    create_credential,
    find_credential,
    list_credentials,
    revoke_credential,
)
from ._signing import SignatureError, acs3_signature, rpc_signature, tc3_signature
from ._tables import VENDORS

__all__ = [
    "VENDORS",
    "BatchSubmitHandler",
    "CmppListing",
    "Credential",
    "CredentialListing",
    "GroupedSubmitHandler",
    "SignatureError",
    "acs3_signature",
    "aliyun",
    "create_account",
    "create_credential",
    "find_credential",
    "list_accounts",
    "list_credentials",
    "live_accounts",
    "mark_mo_delivered",
    "mark_reported",
    "pending_mo",
    "pending_reports",
    "revoke_account",
    "revoke_credential",
    "rpc_signature",
    "tc3_signature",
    "tencent",
]
