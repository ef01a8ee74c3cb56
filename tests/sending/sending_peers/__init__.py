"""Test-only peers of the gateway adapters: one simulator process per protocol (CMPP 2.0/3.0, SGIP 1.2,
SMGP 3.0, HTTP), the helpers that start them as processes, and in-memory event collectors.

Not shipped: pytest puts ``tests/sending`` on ``sys.path``; the benchmark adds it itself.
"""
