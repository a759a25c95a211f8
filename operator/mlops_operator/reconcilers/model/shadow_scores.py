"""A shadowed candidate's label-based scores, as this Model's DriftMonitors last reported them.

The champion records both models' answers by prediction id; a DriftMonitor's check joins the feedback
labels to them and keeps the scores in its status.liveQuality.shadow (docs/drift.md). The Model's
rollout copies them into status.rollout.shadow.liveQuality beside the agreement, so one object shows
both. They are read from the watch cache (the operator watches DriftMonitors: no request), and only
the DriftMonitor writes them: the Model never patches another kind's status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.kube import DRIFT_MONITOR
from mlops_operator.reconcilers.model.children import ModelRun


def latest_for(model: str, candidate: int, monitors: list[dict[str, Any]]) -> ShadowLiveQuality | None:
    """The scores of `candidate` from the latest check among `model`'s monitors that scored it."""
    found: list[tuple[datetime, ShadowLiveQuality]] = []
    for monitor in monitors:
        if ((monitor.get("spec") or {}).get("modelRef") or {}).get("name") != model:
            continue
        live = (monitor.get("status") or {}).get("liveQuality") or {}
        shadow = live.get("shadow")
        if not isinstance(shadow, dict) or shadow.get("version") != str(candidate):
            continue
        try:
            time = datetime.fromisoformat(str(live.get("time")))
            found.append((time if time.tzinfo else time.replace(tzinfo=UTC), ShadowLiveQuality.model_validate(shadow)))
        except (ValueError, ValidationError):  # a status another version of the operator wrote: skipped
            continue
    return max(found, key=lambda pair: pair[0])[1] if found else None


async def labelled_scores(run: ModelRun, candidate: int) -> ShadowLiveQuality | None:
    monitors = await run.ctx.kube.list(DRIFT_MONITOR, run.key.namespace)
    return latest_for(run.resource.name, candidate, monitors)


__all__ = ["labelled_scores", "latest_for"]
