"""The action lifecycle: propose, decide, apply, expire, withdraw, reconcile — every step audited.

    proposed ──► approved ──► applied ──► expired
        │            │           ├──────► withdrawn
        ▼            ▼           └──────► failed   (driver error; rolled back)
     rejected    failed / withdrawn

`Protector` ties the store (state + audit), playbooks, policies, the
blast-radius preview, the safety checks and the enforcement points
together. The clock is a parameter so that tests run expiry without sleeping.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from necoma.config import Settings
from necoma.knowledge.incident import Incident
from necoma.protect import playbooks as pbs
from necoma.protect import policies as pols
from necoma.protect.model import Action
from necoma.protect.points import Points, router
from necoma.protect.preview import exclusion, preview
from necoma.protect.safety import problems
from necoma.protect.store import ENDED, ActionStore, Record, TransitionError


# An apply takes seconds; an action still "approved" this long after its approval was interrupted.
APPLY_GRACE_SECONDS = 300
# drivers whose points keep entries past their expiry until told (`purge_expired`)
PURGEABLE = frozenset({"rpz", "nftables"})


class Refused(Exception):
    """An approval the safety rules refuse; the message gives every reason."""


@dataclass
class Outcome:
    """What happened to one proposal in `propose`."""

    action: Action
    decision: str  # "applied (policy:NAME)", "waits for a person (policy:NAME)", "auto-apply refused: ...", "known"
    policy: str | None
    preview: dict | None


@dataclass
class ReconcileReport:
    reapplied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # approved but never applied: marked failed
    orphans: dict[str, list[str]] = field(default_factory=dict)  # point -> installed ids the store does not know
    purged: dict[str, list[str]] = field(default_factory=dict)  # point -> expired entries it dropped (see `purge`)
    errors: list[str] = field(default_factory=list)


def store_path(settings: Settings):
    return settings.protect.state_db or settings.data_dir / "protect.sqlite"


class Protector:
    def __init__(self, settings: Settings, store: ActionStore | None = None, points: Points | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.cfg = settings.protect
        self.store = store or ActionStore(store_path(settings))
        self.points = points or Points(settings)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.playbooks = pbs.load_playbooks(self.cfg.playbooks)
        self.policies = pols.load_policies(self.cfg.policies)

    def close(self) -> None:
        self.store.close()

    # -- proposing
    def proposals(self, incident: Incident) -> list[Action]:
        route = router(self.settings)
        out = []
        for name, pb in self.playbooks.items():
            if pbs.triggers(pb, incident):
                out += pbs.propose(name, pb, incident, route=route, own_prefixes=self.cfg.own_prefixes,
                                   default_ttl=self.cfg.default_ttl_seconds)
        return out

    def propose(self, incidents: Iterable[Incident], who: str = "necoma") -> list[Outcome]:
        """Store the playbooks' proposals with their preview, and apply those a policy allows."""
        outcomes = []
        for inc in incidents:
            excluded = exclusion((inc.window_start, inc.window_end), [s.value for s in inc.subjects])
            for action in self.proposals(inc):
                outcomes.append(self._propose_one(action, inc, excluded, who))
        return outcomes

    def _propose_one(self, action: Action, inc: Incident, excluded: dict | None, who: str) -> Outcome:
        action, known = self._identify(action)
        if known:
            return Outcome(known.action, f"known ({known.action.state})", known.policy, known.preview)
        why = f"playbook {action.playbook} for {inc.id} (rating {inc.rating}): {action.reason}"
        return self._file(action, who, why, excluded, inc.confidence)

    def _identify(self, action: Action) -> tuple[Action, Record | None]:
        """The action's id, and the stored action already doing the same for the same incident, if one is
        still proposed, approved, applied — or rejected: a person's "no" stands for that incident. One that
        ended (expired, withdrawn, failed) does not block: the attack is back, so a new action is proposed
        under the next generation's id (same content, new id, its own audit trail)."""
        generation = 0
        while True:
            candidate = action.with_id(generation)
            known = self.store.lookup(candidate.id)
            if known is None:
                return candidate, None
            if known.action.state not in ENDED:
                return candidate, known
            generation += 1

    def _file(self, action: Action, who: str, why: str, excluded: dict | None, confidence: str | None) -> Outcome:
        """Store a new proposal with its preview; apply it now if a policy allows and nothing refuses."""
        action, note = self._capped(action)
        view = preview(action, self.settings.lake_path, self.cfg, excluded, now=self.clock())
        policy = pols.decide(action, self.policies, self.cfg, confidence)
        pname = f"policy:{policy.name}" if policy else None
        self.store.add(action, who, why + (f" [{note}]" if note else ""), policy=policy.name if policy else None,
                       preview=view, note=note)
        if policy is None or policy.decision == "person":
            why = f"waits for a person ({pname or 'no policy matched'})"
            self.store.remark(action.id, pname or who, why, note=why)
            return Outcome(action, why, pname, view)
        refused = [f"preview over threshold: {o}" for o in view.get("over", [])]
        refused += problems(action.model_copy(update={"decided_by": pname}), self.cfg, self.store.count_applied(action.point))
        if refused:
            why = "auto-apply refused: " + "; ".join(refused)
            self.store.remark(action.id, pname, why, note=why)
            return Outcome(action, why, pname, view)
        applied = self._approve_and_apply([action.id], pname, f"{policy.description or policy.name}")
        return Outcome(applied[0], f"{applied[0].state} ({pname})", pname, view)

    def _capped(self, action: Action) -> tuple[Action, str]:
        if action.ttl_seconds <= self.cfg.max_ttl_seconds:
            return action, ""
        note = f"TTL capped from {action.ttl_seconds}s to {self.cfg.max_ttl_seconds}s"
        return action.model_copy(update={"ttl_seconds": self.cfg.max_ttl_seconds}), note

    def file_by_hand(self, action: Action, who: str, incident: Incident | None = None) -> Outcome:
        """An operator files an action (`necoma actions add`): the same preview, policy and safety as a
        playbook's proposal, audited with the operator as its author. Refused at once, with every reason,
        when no person could ever approve it (allow list, a rule matching everything, a too-wide blackhole)."""
        if not who or who.startswith("policy:") or who == "necoma":
            raise Refused("an action filed by hand carries its author's own name (not 'necoma' or 'policy:...')")
        enforced = self.points.kinds(action.point)  # also refuses an unknown point
        if action.kind not in enforced:
            raise Refused(f"point {action.point} ({self.points.configs[action.point]['driver']}) enforces "
                          f"{', '.join(sorted(enforced))}, not {action.kind}")
        if incident is not None:
            action = action.model_copy(update={"incident_id": incident.id, "rating": incident.rating})
        action, known = self._identify(action.model_copy(update={"id": ""}))
        if known:
            return Outcome(known.action, f"known ({known.action.state})", known.policy, known.preview)
        capped, _ = self._capped(action)
        # capacity (max_rules_per_point) is checked at approval: rules may have expired by then
        found = problems(capped.model_copy(update={"decided_by": who}), self.cfg, 0)
        if found:
            raise Refused("; ".join(found))
        excluded = None
        if incident is not None:
            excluded = exclusion((incident.window_start, incident.window_end), [s.value for s in incident.subjects])
        why = (f"filed by hand by {who}" + (f" for {incident.id} (rating {incident.rating})" if incident else "")
               + f": {action.reason}")
        return self._file(action, who, why, excluded, incident.confidence if incident else None)

    # -- deciding
    def approve(self, ids: list[str], who: str, why: str = "") -> list[Action]:
        """A person approves: safety checks, then apply on the points (rolled back as a whole on failure)."""
        if not who or who.startswith("policy:"):
            raise Refused("a person approves under their own name (not 'policy:...')")
        return self._approve_and_apply(ids, who, why or "approved")

    def _approve_and_apply(self, ids: list[str], who: str, why: str) -> list[Action]:
        recs = [self.store.get(i) for i in ids]
        for r in recs:
            if r.action.state != "proposed":
                raise TransitionError(f"{r.action.id} is {r.action.state}; only proposed actions can be approved")
        per_point: dict[str, int] = defaultdict(int)
        refusals = []
        for r in recs:
            a = r.action.model_copy(update={"decided_by": who})
            found = problems(a, self.cfg, self.store.count_applied(a.point) + per_point[a.point])
            per_point[a.point] += 1
            if found:
                reason = "refused: " + "; ".join(found)
                self.store.remark(a.id, who, reason, note=reason)
                refusals.append(f"{a.id}: {'; '.join(found)}")
        if refusals:
            raise Refused("\n".join(refusals))
        approved = [self.store.transition(r.action.id, "approved", who, why, decided_by=who) for r in recs]
        return self._apply(approved, who)

    def _apply(self, batch: list[Action], who: str) -> list[Action]:
        """Apply one batch point by point; when a point fails, withdraw the whole batch and mark it failed."""
        groups: dict[str, list[Action]] = defaultdict(list)
        for a in batch:
            groups[a.point].append(a)
        touched: list[str] = []
        for point, group in groups.items():
            touched.append(point)
            try:
                self.points.driver(point).apply(group)
            except Exception as exc:  # DriverError, or a driver bug: either way the batch must not stay half-applied
                undo = self._rollback(groups, touched)
                why = f"point {point} failed: {exc}; rolled back the batch at {', '.join(touched)}" + (f" ({undo})" if undo else "")
                return [self.store.transition(a.id, "failed", who, why) for a in batch]
        now = self.clock()
        out = []
        for a in batch:
            dry = self.points.dry(a.point)
            why = f"applied at {a.point} ({'dry run' if dry else 'enforced'}), expires in {a.ttl_seconds}s"
            out.append(self.store.transition(a.id, "applied", who, why, applied_at=now, dry_run=dry,
                                             expires_at=now + timedelta(seconds=a.ttl_seconds)))
        return out

    def _rollback(self, groups: dict[str, list[Action]], touched: list[str]) -> str:
        errors = []
        for point in touched:
            try:
                self.points.driver(point).withdraw(groups[point])
            except Exception as exc:
                errors.append(f"withdraw at {point} failed too: {exc}")
        return "; ".join(errors)

    def reject(self, action_id: str, who: str, why: str) -> Action:
        return self.store.transition(action_id, "rejected", who, why or "rejected", decided_by=who)

    def withdraw(self, action_id: str, who: str, why: str) -> Action:
        a = self.store.get(action_id).action
        if a.state == "applied":
            self.points.for_action(a).withdraw([a])
        elif a.state == "proposed":
            raise TransitionError(f"{a.id} is only proposed: reject it instead")
        return self.store.transition(a.id, "withdrawn", who, why or "withdrawn")

    # -- the clock
    def expire(self) -> list[Action]:
        """Withdraw every applied action past its expiry; a point that fails keeps it applied (retried next time)."""
        now, done = self.clock(), []
        for r in self.store.find(("applied",)):
            a = r.action
            if a.expires_at and a.expires_at <= now:
                try:
                    self.points.for_action(a).withdraw([a])
                except Exception as exc:
                    self.store.remark(a.id, "necoma", f"expiry: withdraw at {a.point} failed, will retry: {exc}")
                    continue
                done.append(self.store.transition(a.id, "expired", "necoma", f"TTL of {a.ttl_seconds}s over"))
        return done

    def purge(self, only: list[str] | None = None) -> tuple[dict[str, list[str]], list[str]]:
        """Let the points drop what they hold past its own expiry: RPZ entries (the resolver knows no TTL),
        nftables remnants whose set elements the kernel timed out. `expire` withdraws what the store knows;
        this also catches what it no longer knows (a lost or replaced store, another necoma's leftovers),
        which reconcile would otherwise leave alone forever. Removing an expired entry is always safe.
        Only real points when enforcing: the dry-run file expires with the store, and a necoma that does not
        enforce may not be allowed to run nft at all. BGP speakers hold no expiry: their orphans are reported.
        Returns (point -> purged ids, errors)."""
        purged: dict[str, list[str]] = {}
        errors: list[str] = []
        if self.points.dry_run:
            return purged, errors
        for point in only or list(self.points.configs):
            if self.points.configs[point]["driver"] not in PURGEABLE:
                continue
            try:
                gone = self.points.real(point).purge_expired()
            except Exception as exc:
                errors.append(f"{point}: purging expired entries failed: {exc}")
                continue
            if gone:
                purged[point] = sorted(gone)
        return purged, errors

    def reconcile(self, only: list[str] | None = None) -> ReconcileReport:
        """Make each point (or those in `only`) hold exactly the applied, unexpired actions: expire overdue,
        purge expired leftovers, re-apply missing, withdraw necoma-owned rules the store says should not be there."""
        rep = ReconcileReport()
        rep.expired = [a.id for a in self.expire()]
        rep.interrupted = self._fail_interrupted(rep.errors)
        rep.purged, errors = self.purge(only)
        rep.errors += errors
        for point in only or list(self.points.configs):
            drv = self.points.driver(point)
            try:
                have = drv.installed()
            except Exception as exc:
                rep.errors.append(f"{point}: cannot list installed rules: {exc}")
                continue
            # what this driver should hold: applied in the mode it serves (dry-run approvals are never
            # installed for real when enforcement is switched on later)
            dry = self.points.dry(point)
            should = {r.action.id: r.action for r in self.store.find(("applied",), point=point) if r.action.dry_run == dry}
            missing = [a for i, a in should.items() if i not in have]
            if missing:
                try:
                    drv.apply(missing)
                    for a in missing:
                        self.store.remark(a.id, "necoma", f"reconcile: missing at {point}, re-applied")
                        rep.reapplied.append(a.id)
                except Exception as exc:
                    rep.errors.append(f"{point}: re-apply failed: {exc}")
            for aid in sorted(have - set(should)):
                try:
                    rec = self.store.get(aid)
                except TransitionError:
                    rep.orphans.setdefault(point, []).append(aid)
                    continue
                if rec.action.state == "approved":
                    continue  # being applied right now (older interrupted applies were failed above)
                try:
                    drv.withdraw([rec.action])
                    self.store.remark(aid, "necoma", f"reconcile: installed at {point} but {rec.action.state}, withdrawn")
                    rep.removed.append(aid)
                except Exception as exc:
                    rep.errors.append(f"{point}: withdraw {aid} failed: {exc}")
        return rep

    def _fail_interrupted(self, errors: list[str]) -> list[str]:
        """Approved actions whose apply never finished (necoma stopped half-way): withdraw whatever reached the
        point and mark them failed, so nothing stays half-applied or 'approved' forever."""
        now, out = self.clock(), []
        for r in self.store.find(("approved",)):
            a = r.action
            since = self.store.audit(a.id)[-1].at
            if now - since < timedelta(seconds=APPLY_GRACE_SECONDS):
                continue  # maybe being applied right now by another necoma process
            try:
                self.points.driver(a.point).withdraw([a])
            except Exception as exc:
                errors.append(f"{a.point}: withdraw of interrupted {a.id} failed: {exc}")
                continue
            self.store.transition(a.id, "failed", "necoma", f"reconcile: approved at {since:%Y-%m-%d %H:%M:%S} UTC but "
                                  f"never applied (necoma stopped while applying?); withdrawn from {a.point}")
            out.append(a.id)
        return out

    def refresh_preview(self, action_id: str) -> dict:
        rec = self.store.get(action_id)
        view = preview(rec.action, self.settings.lake_path, self.cfg, (rec.preview or {}).get("excluded"), now=self.clock())
        self.store.set_preview(rec.action.id, view)
        return view
