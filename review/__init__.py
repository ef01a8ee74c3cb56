"""Human review: the queue (SQL is the truth, Redis Streams dispatch it with leases), reviewers and their
decisions, and the training labels those decisions become.

The contract other packages use::

    review.submit(conn, tenant_id=…, source="batch_content", source_ref=f"{batch_id}:{content_hash}",
                  text=…, verdict=verdict_dict, priority=0, batch_size=n, sample_recipients=[…]) -> item id
    review.register_decision_handler("batch_content", handler)   # handler(conn, Decision), in the decision's txn
"""

from ._config import ReviewConfig, load_review_config
from ._items import (
    Decision,
    DecisionHandler,
    content_hash,
    register_decision_handler,
    settle,
    submit,
    submit_api_verdicts,
)
from ._labels import SqlReviewLabelSource
from ._policy import ReviewPolicy, ReviewReason, review_policy
from ._service import api_review_status
from ._tables import FINAL_STATUSES, OPEN_STATUSES

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "Decision",
    "DecisionHandler",
    "ReviewConfig",
    "ReviewPolicy",
    "ReviewReason",
    "SqlReviewLabelSource",
    "api_review_status",
    "content_hash",
    "load_review_config",
    "register_decision_handler",
    "review_policy",
    "settle",
    "submit",
    "submit_api_verdicts",
]
