"""A device's step events → its join attempts, and how each attempt ended.

Segmentation follows the real story (reference/real-logs/hybrid-deployment-sequence.md,
domain.md (d)): profile → enrollment → ODJ request → blob → reboot → ESP → registration. The
profile checks (Autopilot 153/103/100/101) repeat all through one deployment (25 times in the
real one, one of them 3 ms after the ODJ request), as do MDM syncs and ESP polling, so none of
them starts an attempt. A new attempt needs evidence of a new deployment:
- the device starts waiting for a blob again after the previous wait ended (a retry), or
- an enrollment follows an attempt that already asked for a blob or finished its ESP (a reset
  or a re-image).
Profile checks alone make no attempt; a profile failure (807/809/815/908, TPM 171/172) does.
The outcome is judged from the device's own events only, so that missing connector logs can
never turn a success into a failure; the connector adds the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evtxdoc.correlate.evidence import DMEDP, DeviceEvent
from evtxdoc.models import Outcome
from evtxdoc.vocab import STEPS

STEP_ORDER = STEPS

ANCHOR_STEPS = ("profile", "enrollment", "odj_request", "odj_blob", "blob_applied", "offline_join")


@dataclass
class Draft:
    """An attempt being assembled: its steps on the device's final clock."""

    events: list[tuple[int, DeviceEvent]] = field(default_factory=list)  # (local ts, event)
    name: tuple[str | None, str | None] | None = None  # (computer name, domain), once known
    seen: set[str | tuple[str, str]] = field(default_factory=set)  # steps, (step, status)

    def add(self, local: int, event: DeviceEvent) -> None:
        self.events.append((local, event))
        self.seen.add(event.step)
        self.seen.add((event.step, event.status))

    def has(self, step: str, *statuses: str) -> bool:
        if not statuses:
            return step in self.seen
        return any((step, status) in self.seen for status in statuses)

    def first(self, step: str, *statuses: str) -> tuple[int, DeviceEvent] | None:
        return next(
            (
                (t, e)
                for t, e in self.events
                if e.step == step and (not statuses or e.status in statuses)
            ),
            None,
        )

    def last(self, step: str, *statuses: str) -> tuple[int, DeviceEvent] | None:
        return next(
            (
                (t, e)
                for t, e in reversed(self.events)
                if e.step == step and (not statuses or e.status in statuses)
            ),
            None,
        )

    @property
    def anchored(self) -> bool:
        """Holds a step that starts or carries a join (not only profile checks, ESP,
        registration or DC noise): an enrollment, an ODJ step or a profile failure."""
        return any(
            e.step in ANCHOR_STEPS and (e.step != "profile" or e.status == "failed")
            for _, e in self.events
        )

    @property
    def wait_ended(self) -> bool:
        return self.has("odj_blob") or self.has("blob_applied") or self.has("offline_join")

    @property
    def asked(self) -> bool:
        return self.has("odj_request")

    @property
    def wait_start(self) -> int | None:
        found = self.first("odj_request", "waiting")
        return found[0] if found else None

    @property
    def blob_at(self) -> int | None:
        """When the device had the blob (state 2, 107 or 4098/4099), device final clock."""
        times = [
            t
            for t, e in self.events
            if (e.step == "odj_blob" and e.status == "ok")
            or e.step in ("blob_applied", "offline_join")
        ]
        return min(times) if times else None

    @property
    def gave_up_at(self) -> int | None:
        found = self.first("odj_blob", "timed_out")
        return found[0] if found else None


def split(events: list[tuple[int, DeviceEvent]]) -> list[Draft]:
    """Steps sorted by local time → one Draft per attempt."""
    drafts: list[Draft] = []
    current = Draft()
    for local, event in events:
        if current.events and _starts_new(current, event):
            drafts.append(current)
            current = Draft()
        current.add(local, event)
    if current.events:
        drafts.append(current)
    return drafts


def _starts_new(current: Draft, event: DeviceEvent) -> bool:
    if event.step == "odj_request" and event.status == "waiting":
        return current.wait_ended
    if event.step == "enrollment":
        return current.asked or current.has("esp")
    if event.step == "profile" and event.status == "failed":  # a new deployment's profile
        return current.asked
    return False


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    failed_step: str | None
    reason: str
    hybrid: bool


def judge(draft: Draft, join_method: str | None, channels: set[str]) -> Verdict:
    """The outcome of one attempt from its device steps (see the module docstring)."""
    odj = any(
        e.step in ("odj_request", "odj_blob", "blob_applied", "offline_join")
        for _, e in draft.events
    )
    if not odj:
        return _without_odj(draft, join_method)
    failed_join = draft.last("offline_join", "failed")
    if failed_join:
        return Verdict(
            Outcome.FAILED,
            "offline_join",
            f"offline domain join failed: {failed_join[1].detail}",
            True,
        )
    joined = draft.blob_at is not None
    if not joined:
        if draft.has("odj_request", "not_configured") and not draft.has("odj_request", "waiting"):
            return Verdict(
                Outcome.FAILED,
                "odj_request",
                "ODJ state 0: offline domain join is not configured for this device",
                True,
            )
        if draft.has("odj_blob", "timed_out"):
            return Verdict(
                Outcome.TIMED_OUT,
                "odj_blob",
                "timed out waiting for the offline domain join blob (110 state 3)",
                True,
            )
        if draft.has("dc_connectivity", "failed"):
            return Verdict(
                Outcome.FAILED, "dc_connectivity", _first_detail(draft, "dc_connectivity"), True
            )
        return Verdict(
            Outcome.INCOMPLETE, "odj_blob", "the logs end while the device waits for the blob", True
        )
    if draft.has("hybrid_registration", "ok"):
        return Verdict(
            Outcome.SUCCEEDED, None, "joined the domain and registered in Entra ID", True
        )
    dmedp_dc = [
        e for _, e in draft.events if e.step == "dc_connectivity" and e.record.channel == DMEDP
    ]
    if not dmedp_dc and _gave_up_after_join(draft) and "system" not in channels:
        return Verdict(
            Outcome.FAILED,
            "offline_join",
            "the blob arrived and the device gave up waiting afterwards; whether "
            "the offline join failed (4099) or no domain controller answered is in "
            "the device's System log, which the bundle lacks: cannot tell which",
            True,
        )
    if dmedp_dc or _gave_up_after_join(draft):
        return Verdict(
            Outcome.FAILED,
            "dc_connectivity",
            (dmedp_dc[0].detail if dmedp_dc else "timed out after the join")
            + "; the device could not reach a domain controller",
            True,
        )
    esp_done = draft.has("esp", "ok")
    if (
        draft.has("dc_connectivity", "failed")
        and not esp_done
        and not draft.has("hybrid_registration")
    ):
        return Verdict(
            Outcome.FAILED,
            "dc_connectivity",
            _first_detail(draft, "dc_connectivity") + " after the join reboot",
            True,
        )
    esp_failed = draft.last("esp", "failed", "timed_out")
    if esp_failed and not esp_done:
        return Verdict(Outcome.FAILED, "esp", f"ESP ended with {esp_failed[1].detail}", True)
    registration = draft.last("hybrid_registration", "failed")
    if registration:
        return Verdict(
            Outcome.INCOMPLETE,
            "hybrid_registration",
            f"hybrid registration not done yet: {registration[1].detail}",
            True,
        )
    if esp_done:
        if "microsoft-windows-user device registration/admin" not in channels:
            return Verdict(
                Outcome.SUCCEEDED,
                None,
                "joined the domain and finished the ESP device phase (the bundle has "
                "no User Device Registration log to confirm the hybrid "
                "registration)",
                True,
            )
        return Verdict(
            Outcome.INCOMPLETE,
            "hybrid_registration",
            "joined the domain; no hybrid registration logged yet",
            True,
        )
    return Verdict(
        Outcome.INCOMPLETE,
        "reboot" if not draft.has("reboot") else "esp",
        "joined the domain; the logs end before the ESP device phase finished",
        True,
    )


def _gave_up_after_join(draft: Draft) -> bool:
    gave_up, blob = draft.gave_up_at, draft.blob_at
    return gave_up is not None and blob is not None and gave_up > blob


def _first_detail(draft: Draft, step: str) -> str:
    found = draft.first(step, "failed")
    return found[1].detail if found else step


def _without_odj(draft: Draft, join_method: str | None) -> Verdict:
    esp_done = draft.has("esp", "ok")
    if join_method == "entra":
        return Verdict(
            Outcome.NOT_HYBRID,
            None,
            "Entra join (AutopilotDDSZTDFile.json: CloudAssignedDomainJoinMethod 0):"
            " the connector is not involved",
            False,
        )
    profile_failed = draft.last("profile", "failed")
    if profile_failed:
        return Verdict(Outcome.FAILED, "profile", profile_failed[1].detail, join_method == "hybrid")
    if join_method == "hybrid":
        return Verdict(
            Outcome.INCOMPLETE,
            "odj_request",
            "the profile asks for hybrid join but no offline domain join step is logged",
            True,
        )
    if esp_done:
        return Verdict(
            Outcome.NOT_HYBRID,
            None,
            "the ESP finished without any offline domain join step: an Entra join",
            False,
        )
    return Verdict(
        Outcome.UNKNOWN,
        None,
        "no offline domain join step logged and no profile file to tell the join type",
        False,
    )
