"""Fault injection: errors, latency and dropped connections per action, for client retry tests.

A rule matches an action (or '*'), fires with a probability or for the next N matching calls,
and happens either before the action runs (nothing changes) or after it committed (the change is
made, the client does not hear of it: the case that tests idempotent retries).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass

KINDS = {
    # kind: (HTTP status, Code, Message)
    "throttling": (400, "Throttling", "Request was denied due to request throttling."),
    "throttling-user": (400, "Throttling.User", "Request was denied due to user flow control."),
    "internal": (500, "InternalError", "The request processing has failed due to some unknown error."),
    "unavailable": (503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    "latency": (0, "", ""),
    "drop": (0, "", ""),
}


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    action: str = "*"
    kind: str = "throttling"
    probability: float = 1.0
    count: int | None = None        # fire for the next N matching calls, then retire
    latency_ms: int = 0             # for kind 'latency' (also added before any other kind)
    phase: str = "before"           # 'before' the action runs or 'after' it committed
    status: int | None = None       # override the HTTP status of an error kind
    code: str | None = None         # override the error code
    retry_after_ms: int | None = None  # send x-acs-retry-after (milliseconds, as the official SDK reads it)

    def validate(self) -> "Fault":
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; one of {', '.join(sorted(KINDS))}")
        if not isinstance(self.action, str) or not self.action:
            raise FaultError("action must be an action name or '*'")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise FaultError("probability must be between 0 and 1")
        self.probability = float(self.probability)
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise FaultError("count must be a positive integer")
        if not isinstance(self.latency_ms, int) or not 0 <= self.latency_ms <= 60_000:
            raise FaultError("latency_ms must be an integer from 0 to 60000")
        if self.phase not in ("before", "after"):
            raise FaultError("phase must be 'before' or 'after'")
        if self.status is not None and (not isinstance(self.status, int) or not 400 <= self.status <= 599):
            raise FaultError("status must be an HTTP error status (400-599)")
        if self.code is not None and not isinstance(self.code, str):
            raise FaultError("code must be a string")
        if self.retry_after_ms is not None and (not isinstance(self.retry_after_ms, int)
                                                or not 1 <= self.retry_after_ms <= 600_000):
            raise FaultError("retry_after_ms must be an integer from 1 to 600000")
        return self

    def error(self) -> tuple[int, str, str]:
        status, code, message = KINDS[self.kind]
        return self.status or status, self.code or code, message


def parse_spec(spec: str) -> Fault:
    """CLI form: ACTION=KIND[,probability=P][,count=N][,latency_ms=MS][,phase=after][,status=S][,code=C]
    [,retry_after_ms=MS]."""
    action, sep, rest = spec.partition("=")
    if not sep:
        raise FaultError(f"fault {spec!r}: expected ACTION=KIND[,option=value...]")
    kind, *options = rest.split(",")
    fault = Fault(action=action.strip(), kind=kind.strip())
    for opt in options:
        name, sep, value = opt.partition("=")
        name = name.strip()
        if not sep:
            raise FaultError(f"fault {spec!r}: option {opt!r} needs a value")
        try:
            if name == "probability":
                fault.probability = float(value)
            elif name in ("count", "latency_ms", "status", "retry_after_ms"):
                setattr(fault, name, int(value))
            elif name in ("phase", "code"):
                setattr(fault, name, value.strip())
            else:
                raise FaultError(f"fault {spec!r}: unknown option {name!r}")
        except ValueError as exc:
            if isinstance(exc, FaultError):
                raise
            raise FaultError(f"fault {spec!r}: bad value for {name}") from None
    return fault.validate()


def from_dict(data: object) -> Fault:
    if not isinstance(data, dict):
        raise FaultError("each fault must be an object")
    allowed = set(Fault.__dataclass_fields__)
    unknown = set(data) - allowed
    if unknown:
        raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    return Fault(**data).validate()


class Faults:
    """The active rules. Thread-safe; a rule with a count retires when it is used up."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._random = random.Random(seed)

    def add(self, faults: list[Fault], replace: bool = False) -> None:
        with self._lock:
            if replace:
                self._rules = []
            self._rules.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._rules]

    def pick(self, action: str, phase: str) -> Fault | None:
        """The first rule that fires for this call, consuming one of its counts."""
        if not self._rules:  # fast path, no lock: the common case
            return None
        with self._lock:
            for rule in self._rules:
                if rule.phase != phase or rule.action not in ("*", action):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None
