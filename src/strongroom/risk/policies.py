"""Each tenant's risk policy, as the risk gate asks for it (the composition of risk/).

A tenant's policy is a RiskPolicy (risk.decide) of the rules file's set (STRONGROOM_RISK_RULES;
none: the package's starter set, starter_rules.yaml) and the tenant's live and shadow models
from the model registry (risk.registry.ActiveModels, which notices a promotion within a
second), or, for a tenant the registry holds no model for, the artefacts named by
STRONGROOM_RISK_MODEL and
STRONGROOM_RISK_SHADOW_MODEL. The live model's isolation forest is the anomaly scorer. A policy
is rebuilt only when its models change. After each decision the live model's drift monitor
counts the rows and their scores (risk.drift).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.risk.artefact import ModelArtifact, from_bytes
from strongroom.risk.decide import CONTRIBUTIONS_TOP, RiskPolicy
from strongroom.risk.drift import DriftMonitor
from strongroom.risk.model import Contribution, Policy, RiskDecision
from strongroom.risk.registry import check_version
from strongroom.risk.rules import RuleSet

if TYPE_CHECKING:
    from strongroom.risk.registry import ActiveModels


STARTER_RULES = "starter_rules.yaml"  # beside this module, in the package
# Models no longer serving kept loaded to explain their decisions when read (about 1-5 MB each).
EXPLAINERS_KEPT: Final = 4


def starter_rules() -> RuleSet:
    """The rule set of a deployment that names no rules file (STRONGROOM_RISK_RULES): the
    package's conservative starter set (card-testing bursts blocked, a large first payment to
    a payee reviewed; the model's score reviewed from 0.5, blocked from 0.9)."""
    text = resources.files("strongroom.risk").joinpath(STARTER_RULES).read_text(encoding="utf-8")
    return RuleSet.parse(text)


def checked_model(artefact: ModelArtifact, computed: Iterable[str], source: str) -> ModelArtifact:
    """The artefact, if the feature engine computes every feature it reads; else a clear error
    (a model trained on a file's own columns cannot score live payments)."""
    missing = sorted(set(artefact.feature_names) - set(computed))
    if missing:
        raise InvalidRequest(
            f"the model {artefact.version} ({source}) reads features the live feature engine "
            f"does not compute: {', '.join(missing[:8])}; train it on the engine's features "
            "(docs/risk-features.md)",
            code="invalid_model_artefact",
        )
    return artefact


def load_model(path: str | None, computed: Iterable[str]) -> ModelArtifact | None:
    if path is None:
        return None
    return checked_model(ModelArtifact.load(Path(path)), computed, path)


class _Observed:
    """A policy whose decisions are counted by the live model's drift monitor."""

    __slots__ = ("drift", "policy")

    def __init__(self, policy: RiskPolicy, drift: DriftMonitor) -> None:
        self.policy = policy
        self.drift = drift

    def decide(
        self, rows: Sequence[Mapping[str, float]], *, explain: bool = True
    ) -> list[RiskDecision]:
        decisions = self.policy.decide(rows, explain=explain)
        scores = [d.score for d in decisions]
        if all(s is not None for s in scores):
            self.drift.observe(rows, [s for s in scores if s is not None])
        return decisions


class TenantPolicies:
    """`policies(tenant_id)`: the tenant's policy (the risk gate's `policy`)."""

    def __init__(
        self,
        rules: RuleSet,
        computed: Iterable[str],
        *,
        active: ActiveModels[ModelArtifact] | None = None,
        live: ModelArtifact | None = None,
        shadow: ModelArtifact | None = None,
    ) -> None:
        self.computed = frozenset(computed)
        rules.check(self.computed)  # a rule on a feature the engine lacks is refused at start
        self.rules = rules
        self.active = active
        self.live = live
        self.shadow = shadow
        self._built: dict[str, tuple[tuple[int, int], RiskPolicy]] = {}
        # (tenant, version) -> a model no longer serving, loaded to explain its decisions.
        self._explainers: dict[tuple[str, str], ModelArtifact] = {}
        self._lock = threading.Lock()

    def load(self, raw: bytes) -> ModelArtifact:
        """The registry's loader (ActiveModels' `load`): an artefact the engine can feed."""
        artefact = from_bytes(raw)
        return checked_model(artefact, self.computed, "the model registry")

    def __call__(self, tenant_id: str) -> Policy:
        active = self.active.get(tenant_id) if self.active is not None else None
        live, shadow, drift = self.live, self.shadow, None
        if active is not None and (active.live is not None or active.shadow is not None):
            live = active.live.model if active.live is not None else None
            shadow = active.shadow.model if active.shadow is not None else None
            drift = active.drift
        key = (id(live), id(shadow))
        with self._lock:
            built = self._built.get(tenant_id)
            if built is None or built[0] != key:
                anomaly = live.anomaly_scores if live is not None and live.anomaly else None
                built = (key, RiskPolicy(self.rules, live, shadow, anomaly=anomaly))
                self._built[tenant_id] = built
        policy = built[1]
        return policy if drift is None else _Observed(policy, drift)

    def explain(self, tenant_id: str, version: str, row: Mapping[str, float]) -> list[Contribution]:
        """The contributions of `row` under the model `version` of the tenant (risk.service.
        Explain): its live or shadow model, a configured one, or else the registry's artefact
        of that version (a retired model's too: a decision is explained by the model that made
        it, whenever it is read; the last EXPLAINERS_KEPT loaded so are kept). None when no
        such model is found."""
        active = self.active.get(tenant_id) if self.active is not None else None
        loaded = [self.live, self.shadow]
        if active is not None:
            loaded += [x.model for x in (active.live, active.shadow) if x is not None]
        for model in loaded:
            if model is not None and model.version == version:
                return model.explain([row], CONTRIBUTIONS_TOP)[0]
        model = self._registered(tenant_id, version)
        return model.explain([row], CONTRIBUTIONS_TOP)[0] if model is not None else []

    def _registered(self, tenant_id: str, version: str) -> ModelArtifact | None:
        if self.active is None:
            return None
        key = (tenant_id, version)
        with self._lock:
            found = self._explainers.get(key)
        if found is not None:
            return found
        try:
            raw = self.active.registry.artefact(tenant_id, version)
        except NotFound:
            return None
        model = self.load(raw)
        check_version(version, model.version)
        with self._lock:
            self._explainers[key] = model
            while len(self._explainers) > EXPLAINERS_KEPT:
                del self._explainers[next(iter(self._explainers))]
        return model
