"""The composition root: one ``Runtime`` per process opens, from the settings, everything the API app, the
CLI commands, the workers and the web UIs share (SQL, Redis, the phone vault, the screening engine, the
verdict writer) and closes it again, and reads policy.yaml into the typed sections each package owns.

>>> from smsguard.runtime import Runtime
>>> with Runtime().open() as rt:  # doctest: +SKIP
...     rt.db, rt.redis, rt.vault, rt.screening
"""

from ._policy import POLICY_SECTIONS, PolicyDocument
from ._runtime import Runtime

__all__ = ["POLICY_SECTIONS", "PolicyDocument", "Runtime"]
