"""What a batch run did: per-plate outcomes, the end-of-run table and the `--json` object."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "skipped", "failed")


@dataclass
class Outcome:
    """One plate in this run. `path` is shown relative to ROOT."""

    path: str
    format: str
    status: str  # ok | skipped | failed
    error: str | None = None
    objects: int = 0
    seconds: float = 0.0
    bundle: str | None = None
    reason: str | None = None  # why it was imported (new, changed, retry, interrupted) or skipped


@dataclass
class Summary:
    plates: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.plates.append(outcome)

    def count(self, status: str) -> int:
        return sum(1 for p in self.plates if p.status == status)

    @property
    def objects(self) -> int:
        """Objects imported in this run (skipped plates were imported before and are not counted)."""
        return sum(p.objects for p in self.plates if p.status == "ok")

    def to_json(self) -> dict[str, Any]:
        plates = sorted(self.plates, key=lambda p: p.path)
        return {
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "objects": self.objects,
            "seconds": round(self.seconds, 3),
            "plates": [{"path": p.path, "format": p.format, "status": p.status, "error": p.error,
                        "objects": p.objects, "bundle": p.bundle, "reason": p.reason} for p in plates],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    def table(self) -> str:
        """The human summary: failed plates with their errors, then one line of totals per status."""
        lines = []
        failed = sorted((p for p in self.plates if p.status == "failed"), key=lambda p: p.path)
        if failed:
            lines.append("failed plates:")
            lines += [f"  {p.path} ({p.format}): {p.error}" for p in failed]
        width = max([len("plates")] + [len(s) for s in STATUSES])
        lines.append(f"{'plates':<{width}}  {'count':>6}  {'objects':>10}  {'time (s)':>9}")
        for status in STATUSES:
            group = [p for p in self.plates if p.status == status]
            objects = sum(p.objects for p in group) if status == "ok" else 0
            seconds = sum(p.seconds for p in group)
            lines.append(f"{status:<{width}}  {len(group):>6}  {objects:>10}  {seconds:>9.2f}")
        lines.append(f"{'total':<{width}}  {len(self.plates):>6}  {self.objects:>10}  {self.seconds:>9.2f} wall")
        return "\n".join(lines)
