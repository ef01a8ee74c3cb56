"""What each package exports is a contract (as httpx pins its own): adding or removing a name must be a
deliberate change here. ``training`` is a tool behind ``smsguard train`` and exports nothing."""

from __future__ import annotations

import importlib

import pytest

from smsguard import core

PINNED: dict[str, list[str]] = {
    "smsguard.core": [
        "ConfigError", "ConflictError", "ExternalError", "ForbiddenError", "InputError", "LexiconError",
        "LimitError", "ModelError", "NotFoundError", "PROJECT_ROOT", "PeerError", "PolicyError", "PolicyFile",
        "PolicySection",
        "ProtocolError", "QuotaError", "Secrets", "Settings", "SettingsError", "SmsguardError",
        "UnauthenticatedError", "UnavailableError", "VARIABLES", "Variable", "create_once",
        "export_to_children", "format_phone_keys", "generate_secrets", "get_settings", "load_secrets",
        "load_settings", "missing_secrets", "named_variables", "parse_phone_keys", "section_keys",
    ],
    "smsguard.filing": [
        "DocumentVault", "KINDS", "MAX_DOCUMENT_BYTES", "SignatureNotApproved", "USES", "apply", "check_name",
        "decide", "document", "download_headers", "get", "list_signatures", "metadata", "on_signature_decision",
        "require_approved", "resubmit", "set_channel", "sniff",
    ],
    "smsguard.runtime": [
        "POLICY_SECTIONS", "PolicyDocument", "Runtime",
    ],
    "smsguard.engine": [
        "Classifier", "ClassifierResult", "ConflictError", "DEFAULT_MATCHER", "Engine", "EngineConfig",
        "ForbiddenError", "InputError", "Lexicon", "LexiconError", "LexiconHit", "LexiconStage", "MATCHERS",
        "Matcher", "Message", "ModelError", "Normalizer", "NotFoundError", "OffsetMap", "PROJECT_ROOT",
        "Policy", "PolicyError", "RULE_CODES", "Reason", "SmsguardError",
        "Term", "Verdict", "Versions", "build_matcher", "content_hash", "default_config", "load_policy",
        "normalizer", "parse_policy", "screening_policy",
    ],
    "smsguard.api": [
        "create_app",
    ],
    "smsguard.phones": [
        "BLOCKS", "Block", "CARRIERS", "CARRIER_LABELS", "CARRIER_NAMES", "ImportResult", "InvalidPhone",
        "MAX_LENGTH", "Phone", "PhoneKeyError", "PhoneKeys", "PhoneVault", "Portability", "PortabilityReject",
        "VIRTUAL_PREFIXES", "block_of", "decimal_digits", "fold", "keyed_hash", "load_encryption_key",
        "load_hash_key", "load_keys", "mask", "mask_phones_in", "number_portability", "parse_phone",
        "phone_hash", "phone_pattern", "phone_subject", "portability_for", "ported", "vault_for",
    ],
    "smsguard.pumping": [
        "ACTIONS", "ALLOW", "BLOCKED", "Decision", "IP_VELOCITY", "NUMBER_VELOCITY", "PREFIX_DIGITS",
        "PREFIX_LOW_CONVERSION", "PREFIX_VELOCITY", "PumpingGuard", "PumpingRefused", "Rule", "SCOPES", "Subject",
        "TENANT_VELOCITY", "metadata", "pumping_rules",
    ],
    "smsguard.review": [
        "Decision", "DecisionHandler", "FINAL_STATUSES", "OPEN_STATUSES", "ReviewConfig", "ReviewPolicy",
        "ReviewReason",
        "SqlReviewLabelSource", "api_review_status", "content_hash", "load_review_config",
        "register_decision_handler", "review_policy", "settle", "submit", "submit_api_verdicts",
    ],
    "smsguard.review_ui": [
        "ReviewUI",
    ],
    "smsguard.storage": [
        "KeyInfo", "KeyListing", "LOCAL_TENANT", "RedisLocation", "TOUCH_EVERY", "TenantInfo", "VERDICT_COLUMNS",
        "applied_revisions", "count_verdicts", "create_key", "create_tenant", "ensure_local_tenant", "find_key",
        "get_tenant", "get_verdict", "hash_key", "list_keys", "list_tenants", "locate_redis",
        "make_engine", "migrate", "revoke_key", "revoke_tenant_key", "script_heads", "set_rate_limit",
        "tenant_keys", "touch_key",
    ],
    "smsguard.sending": [
        "Cap", "Channel", "CircuitBreaker", "CmppAccount", "CmppGateway", "CmppServer", "CustomerSubmit",
        "DeliveryReport", "EpochChanged", "EventRelay", "EventSink", "Gateway", "GatewayConfigError", "GatewayError",
        "GatewayEvents", "GatewayUnavailable", "GatewayWorker", "GroupCommit", "Handover", "HandoverResult",
        "HttpGateway", "HttpProviderConfig", "InboundMessage", "LocalThrottle", "LongMessageError", "LoopbackGateway",
        "MessageStore", "OutboundMessage", "Outbox", "PermanentGatewayError", "PhoneSeal", "PlainPhones", "Receipt",
        "RedisThrottle", "Redrive", "RetryPolicy", "Router", "SealError", "SentJournal", "SentReport", "SgipGateway",
        "SmgpGateway", "SmppGateway", "SmppServer", "SubmitHandler", "SubmitInDoubt", "SubmitResult", "Throttle",
        "TransientGatewayError", "Unlimited", "VaultPhones", "carrier_of", "channel_table", "is_opt_out",
        "redis_client", "sealed_ciphertext",
    ],
    "smsguard.audit": [
        "AlsoWrite", "Anchors", "ArchiveResult", "AuditError", "AuditEvent", "AuditPolicy", "AuditWriter", "COLUMNS",
        "Checkpoint",
        "DiffReport", "EventFilter", "GENESIS_HASH", "ReplayResult", "Schedule", "VerifyReport", "VersionMissing",
        "anchors_from", "append", "append_many", "archive", "audit_policy", "chain_key", "checkpoint", "event_hash",
        "insert_verdicts", "key_id", "load_phone_key", "load_signing_key", "lock_head", "mask_payload", "mask_phone",
        "mask_phones_in", "materialize", "neutralize", "phone_hash", "phone_subject", "public_key_of", "public_pem",
        "record_export", "record_in_force", "replay", "schedule_of", "shadow_diff", "sign_head", "stream_events",
        "ts_text", "use_signing_key", "verify", "verify_archive",
    ],
    "smsguard.billing": [
        "ANY_KIND", "CARRIERS", "CHARGE_ON", "DEFAULT", "ENTRY_KINDS", "InsufficientBalance", "KINDS", "MAX_AMOUNT",
        "Prices",
        "adjust", "charge", "get_balance", "get_hold", "hold", "hold_prices", "list_prices", "lock", "metadata",
        "money", "open_holds", "price_table", "prices_policy", "refund", "remaining", "set_price", "set_settings",
        "settle",
        "statement", "to_micros", "top_up", "verify",
    ],
    "smsguard.batches": [
        "BatchError", "BatchesPolicy", "BudgetExceeded", "CapRules", "Context", "FrequencyCap", "InvalidPhone",
        "MAX_MERGE", "MESSAGE_STATES", "Phone",
        "PhoneVault", "PolicySections", "QuietHours", "RECORD_STATES", "ReleaseWorker", "RotationReport",
        "SqlEventSink", "SqlSentJournal",
        "Template", "apply_inbound", "apply_report", "batches_policy", "cancel_batch",
        "classify", "create_batch", "create_template", "daily_states", "decide_version", "delete_list",
        "drop_handed_secrets", "export_contacts", "failure_codes", "get_batch", "get_budget",
        "get_list", "get_template", "handle_mo", "import_contacts", "in_quiet_hours", "list_recipients", "mask",
        "merge_lists", "message_id", "message_view",
        "on_content_decision", "on_template_decision", "on_version_decision", "opt_in", "opt_out",
        "opted_out_among", "optout_status",
        "parse_message_id",
        "parse_phone", "pending_versions", "policy_prices", "preview_contacts", "propose_version", "rebuild_sets",
        "reconcile_billing",
        "record_complaint", "redact_text",
        "register_review_handlers", "rejects_csv", "report_csv", "rotate_phone_keys", "seal_secret",
        "search_recipients", "set_budget",
        "submit_batch", "template_history", "vault_for",
    ],
    "smsguard.messages": [
        "MessageError", "PREFIX_DIGITS", "TooManyAttempts", "VerificationEvent", "VerifyError", "VerifyExpired",
        "VerifyMismatch", "VerifyUsed", "add_verification_listener", "check_verification", "conversion",
        "get_message", "get_settings", "get_verification", "list_messages", "metadata", "notify", "prefix_of",
        "record_code_sent", "record_code_verified", "remove_verification_listener", "resume_message",
        "resume_verification", "send_message", "set_settings",
        "start_verification",
    ],
    "smsguard.console": [
        "ConsoleUI", "ConsoleUser", "ConsoleUserError", "DEFAULT_TIME_ZONE", "authenticate", "create_user",
        "set_time_zone", "tenant_time_zones",
    ],
    "smsguard.i18n": [
        "CATALOGUE", "COOKIE", "Catalogue", "DEFAULT_LANGUAGE", "LANGUAGES", "N_", "TEMPLATES", "_", "current_language",
        "gettext", "install", "js_messages", "language_middleware", "language_of", "language_switch", "ngettext",
        "use_language",
    ],
    "smsguard.vendors": [
        "BatchSubmitHandler", "CmppListing", "Credential", "CredentialListing", "GroupedSubmitHandler",
        "SignatureError", "VENDORS",
        "acs3_signature", "aliyun", "create_account", "create_credential", "find_credential", "list_accounts",
        "list_credentials", "live_accounts", "mark_mo_delivered", "mark_reported", "pending_mo", "pending_reports",
        "revoke_account",
        "revoke_credential", "rpc_signature", "tc3_signature", "tencent",
    ],
    "smsguard.webauth": [
        "Account", "Accounts", "AccountsConfig", "HTTP_STATUS", "LOGIN_FAILED", "LoginRequired", "LoginThrottle",
        "MIN_PASSWORD",
        "SqlSessionStore", "TEMPLATES", "ThrottlePolicy", "ThrottleRule", "WebAuth", "WebAuthConfig",
        "hash_password", "http_headers", "http_status", "load_secret", "throttle", "verify_password",
    ],
    "smsguard.webhooks": [
        "ATTEMPT_HEADER", "DELIVERY_STATUSES", "Dispatcher", "EVENT_ID_HEADER", "EVENT_TYPES", "EVENT_TYPE_HEADER",
        "Job", "REPLAY_WINDOW", "RetryPolicy", "SIGNATURE_HEADER", "create_endpoint", "delete_endpoint", "emit",
        "event_body", "get_endpoint", "get_event", "list_dead_letters", "list_deliveries", "list_endpoints",
        "resend_event", "rotate_secret", "signature_header", "update_endpoint", "verify",
    ],
}
packages = pytest.mark.parametrize("package", sorted(PINNED))


@packages
def test_all_is_pinned(package: str) -> None:
    module, expected = importlib.import_module(package), PINNED[package]
    assert sorted(module.__all__) == expected
    assert len(set(module.__all__)) == len(module.__all__)
    assert sorted(expected) == expected


@packages
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@packages
def test_star_import_gives_exactly_all(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PINNED[package])


def test_errors_share_one_base_and_carry_no_http() -> None:
    errors = [getattr(core, n) for n in core.__all__ if n.endswith("Error")]
    for cls in errors:
        assert issubclass(cls, core.SmsguardError)
        assert not hasattr(cls, "status_code"), f"{cls.__name__}: HTTP statuses live at the edge (webauth.http_status)"


def test_every_project_error_class_is_in_the_one_tree() -> None:
    """No error of this project outside the tree (CmppError was a ValueError, PeerError a RuntimeError)."""
    for package in PINNED:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                assert issubclass(obj, core.SmsguardError), f"{package}.{name}"
