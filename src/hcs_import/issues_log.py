"""Counting warnings: a value that could not be read is never dropped silently.

Parsers report each problem with a category; repeated problems of one category are counted, and the
first occurrence is kept as an example, so a million bad cells make one line, not a million.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_CATEGORY = 300
MAX_EXAMPLE = 200


@dataclass
class WarningLog:
    _counts: dict[str, int] = field(default_factory=dict)
    _first: dict[str, str] = field(default_factory=dict)

    def add(self, category: str, example: str, count: int = 1) -> None:
        if count <= 0:
            return
        # A warning quotes what it found: a damaged file can make that a megabyte. One line of the
        # manifest (and of the CLI's report) stays readable.
        category = category if len(category) <= MAX_CATEGORY else category[: MAX_CATEGORY - 3] + "..."
        example = example if len(example) <= MAX_EXAMPLE else example[: MAX_EXAMPLE - 3] + "..."
        self._counts[category] = self._counts.get(category, 0) + count
        self._first.setdefault(category, example)

    def note(self, message: str) -> None:
        """A one-off remark (e.g. an inferred plate geometry)."""
        self.add(message, message)

    def merge(self, other: WarningLog) -> None:
        for cat, n in other._counts.items():
            self.add(cat, other._first[cat], n)

    def count(self, category: str) -> int:
        return self._counts.get(category, 0)

    def lines(self) -> tuple[str, ...]:
        out = []
        for cat, n in self._counts.items():
            example = self._first[cat]
            if example == cat and n == 1:
                out.append(cat)
            else:
                out.append(f"{cat}: {n} occurrence{'s' if n != 1 else ''} (first: {example})")
        return tuple(out)
