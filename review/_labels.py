"""Reviewer decisions as training labels: what ``smsguard train --with-reviews`` reads (through the
``training.reviews.ReviewLabelSource`` protocol) straight from the ``review_labels`` table."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine, select

from ._tables import review_labels


class SqlReviewLabelSource:
    """Every final review decision: approved → 0 (ham), rejected → 1 (spam); oldest first."""

    def __init__(self, db: Engine, *, tenant_id: int | None = None) -> None:
        self.db = db
        self.tenant_id = tenant_id

    def _rows(self) -> Iterator[tuple[str, int, str | None]]:
        q = select(review_labels.c.text, review_labels.c.label, review_labels.c.category).order_by(
            review_labels.c.created_at, review_labels.c.item_id
        )
        if self.tenant_id is not None:
            q = q.where(review_labels.c.tenant_id == self.tenant_id)
        with self.db.connect() as conn:
            # streamed: a long review history need not fit in memory
            for row in conn.execution_options(yield_per=1000).execute(q):
                yield row[0], row[1], row[2]

    def labels(self) -> Iterator[tuple[str, int]]:
        for text, label, _ in self._rows():
            yield text, int(label)

    def labels_with_category(self) -> Iterator[tuple[str, int, str | None]]:
        """The same with the reviewer's category (rejections default to the item's screening category)."""
        for text, label, category in self._rows():
            yield text, int(label), category
