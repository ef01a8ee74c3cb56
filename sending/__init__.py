"""Sending gateways: one interface (submit, delivery receipts, MO) over HTTP, SMPP 3.4, CMPP 2.0/3.0
(China Mobile), SGIP 1.2 (China Unicom) and SMGP 3.0 (China Telecom),
with throttling, retry, failover and a crash-safe worker.

Layering: adapters (``Gateway``) speak one protocol each and report raw ``Receipt`` / ``InboundMessage``
events; ``MessageStore`` (Redis) maps gateway ids back to our ids and writes outcomes to an events
stream; ``EventRelay`` hands them to an ``EventSink`` (recipients and opt-outs: issue 7);
``GatewayWorker`` drives the outbox through routing, throttling, retry, failover and circuit breaking.
``CmppServer`` is the other direction: the ISMG side, for customers' own CMPP clients.
"""

from smsguard.sending._circuit import CircuitBreaker
from smsguard.sending._cmpp_client import CmppGateway
from smsguard.sending._cmpp_server import CmppAccount, CmppServer, CustomerSubmit, SubmitHandler
from smsguard.sending._failover import Router, carrier_of
from smsguard.sending._gateway import (
    DeliveryReport,
    EventSink,
    Gateway,
    GatewayConfigError,
    GatewayError,
    GatewayEvents,
    GatewayUnavailable,
    InboundMessage,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    SentReport,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    is_opt_out,
)
from smsguard.sending._gateway_role import channel_table
from smsguard.sending._http import HttpGateway, HttpProviderConfig
from smsguard.sending._journal import GroupCommit, SentJournal
from smsguard.sending._long_sms import LongMessageError
from smsguard.sending._loopback import LoopbackGateway
from smsguard.sending._outbox import Cap, EpochChanged, Handover, HandoverResult, Outbox, Redrive
from smsguard.sending._retry import RetryPolicy
from smsguard.sending._sealing import PhoneSeal, PlainPhones, SealError, VaultPhones, sealed_ciphertext
from smsguard.sending._sgip_client import SgipGateway
from smsguard.sending._smgp_client import SmgpGateway
from smsguard.sending._smpp import SmppGateway
from smsguard.sending._smpp_server import SmppServer
from smsguard.sending._store import EventRelay, MessageStore, redis_client
from smsguard.sending._throttle import LocalThrottle, RedisThrottle, Throttle, Unlimited
from smsguard.sending._worker import Channel, GatewayWorker

__all__ = [
    "Cap",
    "Channel",
    "CircuitBreaker",
    "CmppAccount",
    "CmppGateway",
    "CmppServer",
    "CustomerSubmit",
    "DeliveryReport",
    "EpochChanged",
    "EventRelay",
    "EventSink",
    "Gateway",
    "GatewayConfigError",
    "GatewayError",
    "GatewayEvents",
    "GatewayUnavailable",
    "GatewayWorker",
    "GroupCommit",
    "Handover",
    "HandoverResult",
    "HttpGateway",
    "HttpProviderConfig",
    "InboundMessage",
    "LocalThrottle",
    "LongMessageError",
    "LoopbackGateway",
    "MessageStore",
    "OutboundMessage",
    "Outbox",
    "PermanentGatewayError",
    "PhoneSeal",
    "PlainPhones",
    "Receipt",
    "RedisThrottle",
    "Redrive",
    "RetryPolicy",
    "Router",
    "SealError",
    "SentJournal",
    "SentReport",
    "SgipGateway",
    "SmgpGateway",
    "SmppGateway",
    "SmppServer",
    "SubmitHandler",
    "SubmitInDoubt",
    "SubmitResult",
    "Throttle",
    "TransientGatewayError",
    "Unlimited",
    "VaultPhones",
    "carrier_of",
    "channel_table",
    "is_opt_out",
    "redis_client",
    "sealed_ciphertext",
]
