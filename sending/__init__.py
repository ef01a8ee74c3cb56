"""Sending gateways: one interface (submit, delivery receipts, MO) over HTTP, SMPP 3.4 and CMPP 2.0,
with throttling, retry, failover and a crash-safe worker.

Layering: adapters (``Gateway``) speak one protocol each and report raw ``Receipt`` / ``InboundMessage``
events; ``MessageStore`` (Redis) maps gateway ids back to our ids and writes outcomes to an events
stream; ``EventRelay`` hands them to an ``EventSink`` (recipients and opt-outs: issue 7);
``GatewayWorker`` drives the outbox through routing, throttling, retry, failover and circuit breaking.
"""

from sending._circuit import CircuitBreaker
from sending._cmpp_client import CmppGateway
from sending._failover import Router, carrier_of
from sending._gateway import (
    DeliveryReport,
    EventSink,
    Gateway,
    GatewayConfigError,
    GatewayError,
    GatewayEvents,
    GatewayUnavailable,
    InboundMessage,
    MemoryEvents,
    MemorySink,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    is_opt_out,
)
from sending._http import HttpGateway, HttpProviderConfig
from sending._loopback import LoopbackGateway
from sending._retry import RetryPolicy
from sending._smpp import SmppGateway
from sending._store import EventRelay, MessageStore, redis_client
from sending._throttle import LocalThrottle, RedisThrottle, Throttle, Unlimited
from sending._worker import Channel, GatewayWorker

__all__ = [
    "Channel",
    "CircuitBreaker",
    "CmppGateway",
    "DeliveryReport",
    "EventRelay",
    "EventSink",
    "Gateway",
    "GatewayConfigError",
    "GatewayError",
    "GatewayEvents",
    "GatewayUnavailable",
    "GatewayWorker",
    "HttpGateway",
    "HttpProviderConfig",
    "InboundMessage",
    "LocalThrottle",
    "LoopbackGateway",
    "MemoryEvents",
    "MemorySink",
    "MessageStore",
    "OutboundMessage",
    "PermanentGatewayError",
    "Receipt",
    "RedisThrottle",
    "RetryPolicy",
    "Router",
    "SmppGateway",
    "SubmitInDoubt",
    "SubmitResult",
    "Throttle",
    "TransientGatewayError",
    "Unlimited",
    "carrier_of",
    "is_opt_out",
    "redis_client",
]
