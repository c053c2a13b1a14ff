"""``method: optuna``: Optuna's TPE sampler picks the sets, one batch at a time.

The study asks for ``batch`` sets, they all run on the cluster, and their results are told back
in set order before the next batch is asked for. So the sets depend only on the seed and the
results, never on how many workers ran them or in which order they finished: the same sweep on
1 and on 2 workers gives the same sets and the same table, and a rerun into the same folder asks
for the same sets and finds them finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .grid import ParameterSet, SweepPlan
from .variants import ProfileVariants
from .worker import SetOutcome

RunBatch = Callable[[list[ParameterSet], dict[str, dict[str, Any]]], dict[str, SetOutcome]]
"""Runs valid sets (with their variant data by key); returns outcomes by set key."""


def optuna_sets(plan: SweepPlan, variants: ProfileVariants, run_batch: RunBatch
                ) -> tuple[list[ParameterSet], dict[str, SetOutcome]]:
    """Every set Optuna asked for (ids in asking order) and their outcomes by key; a set the profile
    refuses is an outcome with the profile's error (Optuna is told it failed)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = plan.spec
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=spec.seed))
    total = int(spec.n_trials or 0)
    sets: list[ParameterSet] = []
    outcomes: dict[str, SetOutcome] = {}
    while len(sets) < total:
        trials = [study.ask() for _ in range(min(spec.batch, total - len(sets)))]
        batch = [ParameterSet.make(len(sets) + i, {d.path.text: d.suggest(t) for d in plan.dimensions})
                 for i, t in enumerate(trials)]
        valid: dict[str, dict[str, Any]] = {}
        for item in batch:
            data, problems = variants.check(item)
            if data is not None:
                valid[item.key] = data
            elif item.key not in outcomes:
                outcomes[item.key] = SetOutcome(set_id=item.id, key=item.key, scope="full", ok=False,
                                                error="; ".join(problems))
        outcomes.update(run_batch([s for s in batch if s.key in valid and s.key not in outcomes], valid))
        for trial, item in zip(trials, batch, strict=True):
            outcome = outcomes[item.key]
            value = outcome.metrics.get(spec.metric) if outcome.ok else None
            if isinstance(value, (int, float)) and math.isfinite(value):
                study.tell(trial, float(value))
            else:
                study.tell(trial, state=TrialState.FAIL)
        sets.extend(batch)
    return sets, outcomes
