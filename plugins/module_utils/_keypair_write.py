# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the key pair writes of ecs_keypair, in a safe order.

Each job is ordered so that a failure either leaves the old state or says exactly what it
changed: a replacement puts the old key pair back (its public key imported again, its
instances attached again) when the new one cannot be made; tags are set before the old ones
are removed; a CreateKeyPair whose answer is lost or late never leaves a key pair whose
private key nobody holds without saying so (and without a marker the next run acts on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import (
    Changes,
    PartialChangeError,
    describe_changes,
    join_ids,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import (
    ALREADY_EXISTS_CODE,
    attach_key_pair,
    create_attempts,
    create_key_pair,
    delete_key_pair,
    detach_key_pair,
    failure_lines,
    first_error,
    get_key_pair,
    import_key_pair,
    instances_holding,
    maybe_done,
    tag_key_pair,
    untag_key_pair,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import api_public_key, api_tags, instance_ids, same_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import MAX_TAGS, KeypairError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_keys import public_key_of_private_text
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import (
    PendingMarker,
    PrivateKeyFile,
    public_key_of_file,
)

# A lost reply: the service may or may not have acted.
AMBIGUOUS_CODES = ("ConnectionError", "Timeout", "InternalError", "MalformedResponse")
# No answer at all: the request may still be running on the service and commit later.
IN_FLIGHT_CODES = ("ConnectionError", "Timeout")
# How many times a create is made again when late requests of the same run undid it.
CONFIRM_ROUNDS = 3
# After the last create got no answer, how long to wait before looking for what it made late.
SETTLE_MIN_SECONDS = 2.0
SETTLE_MAX_SECONDS = 30.0


def is_ambiguous(error: EcsApiError) -> bool:
    """Whether a failed call may still have acted (its answer lost, late or unreadable).

    503 and throttling say the service did not act (the client retries them); a request that
    surely never left did nothing either.
    """
    if not error.sent:
        return False
    if error.code in AMBIGUOUS_CODES:
        return True
    status = error.http_status or 0
    return status >= 500 and status != 503 and error.code != "ServiceUnavailable"


def settle_seconds(code: str, timeout: float) -> float:
    """How long a request without an answer may still take to commit on the service.

    One the client gave up on after `timeout` had been running that long already: wait about as
    long again (the look then comes twice the timeout after the send). A dropped connection says
    nothing about how long the service takes: a short pause. A commit later than that is left to
    the marker and the next run.
    """
    if code == "Timeout":
        return min(SETTLE_MAX_SECONDS, max(SETTLE_MIN_SECONDS, float(timeout)))
    return SETTLE_MIN_SECONDS


# ---------------------------------------------------------------------------------------------
# Single writes.


def import_key(client: Any, name: str, key: PublicKey, tags: Optional[Mapping[str, str]],
               group: Optional[str], after_delete: bool = False) -> Dict[str, Any]:
    """ImportKeyPair. 'Already exists' with the same key means an earlier try landed: success.

    Right after our own delete the name can stay taken for a while (eventual consistency), so
    then 'already exists' with another key is retried with backoff.
    """
    tries = (client.retries + 1) if after_delete else 1
    for attempt in range(tries):
        try:
            return import_key_pair(client, name, key.line(), tags, group)
        except EcsApiError as error:
            if error.code != ALREADY_EXISTS_CODE:
                raise
            current = get_key_pair(client, name)
            if current is not None and same_key(current, key):
                return current
            if attempt + 1 >= tries:
                if current is None:
                    raise name_taken_error(client, name, error, "ImportKeyPair") from None
                raise
            client.pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def name_taken_error(client: Any, name: str, error: EcsApiError, action: str) -> EcsApiError:
    """KeyPair.AlreadyExist for a name no key pair holds: say why when instances show that name.

    ECS (the older behaviour, and the emulator's default) lets a key pair be deleted while
    instances still hold it; they keep showing its name, and the name stays taken until it is
    detached from every one of them, although DescribeKeyPairs lists nothing under it. Only then
    is the bare error replaced, with the instances and the task that frees the name.
    """
    try:
        holders = instances_holding(client, name)
    except EcsApiError:
        return error
    if not holders:
        return error
    ids = instance_ids(holders)
    shown = join_ids(ids, 50)
    return EcsApiError(
        code=error.code, action=action, request_id=error.request_id, http_status=error.http_status,
        message=(f"{error.message}; no key pair {name} exists, but {len(ids)} instance(s) still show that name "
                 f"({shown}): a key pair {name} was deleted while it was attached to them, and ECS keeps the name "
                 f"taken until it is detached from each; detach it (sshkeys.ecs.ecs_keypair_attach with "
                 f"key_pair_name: {name}, state: absent and these instance_ids), then run this task again"))


def apply_tags(client: Any, name: str, current: Mapping[str, str], to_set: Mapping[str, str],
               to_remove: List[str], changes: Changes) -> None:
    """TagResources, then UntagResources: a failure part way never loses a tag unannounced.

    TagResources sets and overwrites, so it goes first: if it fails, nothing changed. Only when
    the old and new keys together would pass the limit of 20 tags must the removal go first;
    then a failure of the second call says which tags were removed.
    """
    steps = [(tag_key_pair, to_set, "set tags"), (untag_key_pair, to_remove, "removed tags")]
    if len(set(current) | set(to_set)) > MAX_TAGS:
        steps.reverse()
    for send, what, verb in steps:
        if not what:
            continue
        try:
            send(client, name, what)
        except EcsApiError as error:
            if not changes:
                raise
            raise PartialChangeError(f"{error}; {describe_changes(changes.items)}; running the task again finishes "
                                     "the tags", changes=changes.items, error=error) from None
        changes.add(f"{verb} {', '.join(sorted(what))} of key pair {name}")


# ---------------------------------------------------------------------------------------------
# CreateKeyPair: the private key comes once, in the answer.


@dataclass
class CloudCreate:
    """CreateKeyPair, then the private key straight into its file before anything else runs.

    The answer carries the only copy of the private key. When it is lost (timeout, dropped
    connection, a 5xx after the fact), the key pair may exist with nobody holding its private
    key: it is deleted by name at once (a read could fail too) and the creation tried again. A
    request the client gave up on may still commit later: after the last try, the module looks
    again after a pause and deletes what appeared. A marker beside private_key_path says which
    key pair is being created until the key is saved, so a later run can recognise an orphan.
    Before any such delete, a key pair that matches the private key already in private_key_path
    is another run's success and is kept.
    """

    client: Any
    name: str
    tags: Optional[Mapping[str, str]]
    group: Optional[str]
    target: Optional[PrivateKeyFile]
    after_delete: bool = False
    marker: Optional[PendingMarker] = None
    passphrase: Optional[str] = field(default=None, repr=False)
    # The last answer of this run that was lost, and what was done about it.
    lost: Optional[EcsApiError] = field(default=None, init=False)
    notes: List[str] = field(default_factory=list, init=False)
    # True when, after lost answers, the key pair could not be read back to confirm it.
    unconfirmed: bool = field(default=False, init=False)

    def run(self) -> Tuple[Dict[str, Any], str]:
        """(reply without the private key, private key text)."""
        if self.marker is not None:
            self.marker.write(self.name, self.client.region)
        for _round in range(CONFIRM_ROUNDS):
            reply = self._send()
            private = self._private_key_of(reply)
            self._save(private)
            confirmed = self.lost is None or self._confirmed(private)
            if confirmed is not False:
                self.unconfirmed = confirmed is None
                if confirmed:
                    self._forget_marker()  # unknown: the marker stays for the next run to check
                return reply, private
            # A late request of this run (a delete retried after a timeout, a create that
            # timed out) landed after the success: the saved key matches nothing. Again.
            if self.target is not None:
                self.target = PrivateKeyFile(self.target.path)
        raise self._lost_error(self.lost or EcsApiError(code="Timeout", message="no answer"),
                               f"key pair {self.name} kept changing after this run's requests timed out; "
                               + self._marker_hint())

    def _confirmed(self, private: str) -> Optional[bool]:
        """After lost answers: once this run's late requests must have landed, does the key pair
        still match the private key just saved? None when it cannot be read."""
        key = public_key_of_private_text(private)
        self.client.wait(settle_seconds(self.lost.code if self.lost else "", self.client.timeout))
        try:
            item = get_key_pair(self.client, self.name)
        except EcsApiError:
            return None
        if item is not None and key is not None and same_key(item, key) is True:
            return True
        if item is not None:
            self._remove_orphan(self.lost or EcsApiError(code="Timeout", message="no answer"))
        self.notes.append("a late request of this run replaced or deleted the key pair just saved; it was "
                          "created again")
        return False

    # -- sending ----------------------------------------------------------------------------

    def _send(self) -> Dict[str, Any]:
        tries = self.client.retries + 1
        for attempt in range(tries):
            last = attempt + 1 >= tries
            sent_before = self._sends()
            try:
                return create_key_pair(self.client, self.name, self.tags, self.group)
            except EcsApiError as error:
                if error.code == ALREADY_EXISTS_CODE:
                    # The client may have sent this call more than once (a 503 after the fact):
                    # then an earlier send of it may be what holds the name now.
                    self._name_taken(error, attempt, last, resent=self._sends() - sent_before > 1)
                    continue
                if not is_ambiguous(error):
                    self._refused(error)
                self.lost = error
                self._remove_orphan(error)
                if last:
                    self._give_up_lost(error)
                self.client.pause(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sends(self) -> int:
        return create_attempts(self.client)

    def _name_taken(self, error: EcsApiError, attempt: int, last: bool, resent: bool) -> None:
        """KeyPair.AlreadyExist: our own lost create, our own delete not seen yet, or someone else."""
        if self.lost is not None or resent:
            self.lost = self.lost or error
            self._remove_orphan(error)
            if last:
                self._give_up_lost(error)
            self.client.pause(attempt)
            return
        if self.after_delete and not last:
            self.client.pause(attempt)  # our delete of the old key pair is not visible everywhere yet
            return
        self._forget_marker()
        try:
            absent = get_key_pair(self.client, self.name) is None
        except EcsApiError:
            absent = False
        if absent:
            explained = name_taken_error(self.client, self.name, error, "CreateKeyPair")
            if explained is not error:
                raise explained from None
        raise EcsApiError(code=error.code, action="CreateKeyPair", request_id=error.request_id,
                          http_status=error.http_status,
                          message=f"{error.message}; key pair {self.name} was absent when this run looked and has "
                                  "been created by someone else since (another run?); it was left alone: run the "
                                  "task again to compare it") from None

    def _refused(self, error: EcsApiError) -> NoReturn:
        """A clear refusal: this try made nothing; an earlier lost one may have."""
        if self.lost is not None and self.lost.code in IN_FLIGHT_CODES:
            self._give_up_lost(self.lost, cause=error)
        self._forget_marker()
        raise error

    # -- cleaning up after a lost answer ------------------------------------------------------

    def _held_by_file(self) -> Optional[bool]:
        """Whether the key pair now matches the private key already in private_key_path (then it
        is another run's success, not an orphan). None: the key pair could not be read."""
        path = self.target.path if self.target is not None else None
        if not path or not os.path.lexists(path):
            return False
        try:
            key = public_key_of_file(path, self.passphrase)
        except KeypairError:
            return False
        try:
            item = get_key_pair(self.client, self.name)
        except EcsApiError:
            return None
        return item is not None and same_key(item, key) is True

    def _remove_orphan(self, lost: EcsApiError) -> None:
        """Delete what a lost create may have made, unless it is provably someone else's key pair."""
        held = self._held_by_file()
        if held:
            self._another_runs_key()
        if held is None:
            raise self._lost_error(lost, f"key pair {self.name} may exist with nobody holding its private key, and "
                                         "reading it failed too; " + self._marker_hint())
        try:
            if delete_key_pair(self.client, self.name):
                self.notes.append("a key pair that a lost answer had created was deleted again")
        except EcsApiError as error:
            raise self._lost_error(lost, f"deleting what it may have created failed too ({error.code}, request id "
                                         f"{error.request_id}): key pair {self.name} may exist with nobody holding "
                                         f"its private key; {self._marker_hint()}") from None

    def _give_up_lost(self, lost: EcsApiError, cause: Optional[EcsApiError] = None) -> NoReturn:
        """After the last try: a request still in flight may commit late; look once more."""
        if lost.code in IN_FLIGHT_CODES:
            self.client.wait(settle_seconds(lost.code, self.client.timeout))
            try:
                late = get_key_pair(self.client, self.name)
            except EcsApiError as error:
                raise self._lost_error(lost, f"looking for a late commit failed ({error.code}); "
                                             f"{self._marker_hint()}") from None
            if late is not None:
                self._remove_orphan(lost)
                self.notes.append("a key pair that a slow request created after the timeout was deleted again")
        self._forget_marker()
        tail = f"; then {cause}" if cause is not None else ""
        raise self._lost_error(lost, f"no key pair {self.name} is left whose private key nobody holds; running the "
                                     f"task again is safe{tail}")

    def _another_runs_key(self) -> NoReturn:
        self._forget_marker()
        raise KeypairError(f"key pair {self.name} was created meanwhile and matches the private key already in "
                           f"{self.target.path if self.target else 'private_key_path'}: another run made it; it was "
                           "kept, and running the task again finds it unchanged")

    def _lost_error(self, lost: EcsApiError, outcome: str) -> EcsApiError:
        notes = "".join(f"; {note}" for note in self.notes)
        return EcsApiError(code=lost.code, action="CreateKeyPair", request_id=lost.request_id,
                           http_status=lost.http_status,
                           message=f"{lost.message}; the answer with the private key was lost{notes}; {outcome}")

    def _marker_hint(self) -> str:
        if self.marker is None:
            return "delete it (state=absent) and run the task again"
        return (f"the marker {self.marker.path} records it, and the next run with this private_key_path deletes "
                "it and creates the key pair again")

    def _forget_marker(self) -> None:
        if self.marker is not None:
            self.marker.remove()

    # -- the private key --------------------------------------------------------------------

    def _private_key_of(self, reply: Dict[str, Any]) -> str:
        private = reply.pop("PrivateKeyBody", None)
        if not private or not isinstance(private, str):
            outcome = self._delete_unusable()
            raise EcsApiError(code="MalformedResponse", action="CreateKeyPair", request_id=reply.get("RequestId"),
                              message=f"the reply carries no private key; {outcome}")
        return private if private.endswith("\n") else private + "\n"

    def _save(self, private: str) -> None:
        if self.target is None:
            return
        try:
            self.target.commit(private.encode("utf-8"))
        except OSError as exc:
            # The key exists only in this process now. It is never printed; the key pair that
            # nobody could log in with is removed instead, so a re-run starts clean.
            self.target.discard()
            outcome = self._delete_unusable()
            raise KeypairError(f"key pair {self.name} was created but its private key could not be written to "
                               f"{self.target.path} ({exc.strerror or type(exc).__name__}); the private key is not "
                               f"shown and is lost; {outcome}") from None

    def _delete_unusable(self) -> str:
        """Delete the key pair just created whose private key cannot be kept; say how it went."""
        try:
            deleted = delete_key_pair(self.client, self.name)
        except EcsApiError as error:
            return (f"deleting the key pair failed too ({error.code}, request id {error.request_id}); "
                    + self._marker_hint())
        self._forget_marker()
        return "the key pair was deleted again" if deleted else "the key pair is gone"


# ---------------------------------------------------------------------------------------------
# Instances.


def bind(client: Any, send: Callable[..., Dict[str, Dict[str, Any]]], name: str,
         ids: Sequence[str]) -> Tuple[List[str], Dict[str, Dict[str, Any]]]:
    """(ids done, per-instance outcome) of send (attach_key_pair or detach_key_pair)."""
    outcome = send(client, name, list(ids))
    return [i for i in ids if outcome[i]["ok"]], outcome


def attach_command(name: str, ids: Sequence[str]) -> str:
    """The task that finishes a job whose attach did not happen."""
    return f"sshkeys.ecs.ecs_keypair_attach with key_pair_name={name} and instance_ids=[{', '.join(ids)}]"


# ---------------------------------------------------------------------------------------------
# Replacing a key pair under the same name.


class Replacement:
    """Detach and delete the old key pair; after the new one is made, attach it again.

    A name holds one key pair, so the old one must go before the new one can come. When a step
    fails, what was done is undone where it can be (instances attached again, the old public key
    imported again) and the failure lists every change and whether the undo worked.
    """

    def __init__(self, client: Any, name: str, old: Mapping[str, Any], instance_ids: Sequence[str],
                 changes: Changes, restore: bool = True) -> None:
        self.client = client
        self.name = name
        self.old = old
        self.ids = list(instance_ids)
        self.changes = changes
        # False for an orphan (a key pair whose private key nobody holds): it is not put back.
        self.restore = restore

    def take_down(self) -> None:
        """Detach the old key pair from its instances, then delete it."""
        if self.ids:
            done, outcome = bind(self.client, detach_key_pair, self.name, self.ids)
            if done:
                self.changes.add(f"detached key pair {self.name} from {join_ids(done)}")
            if len(done) < len(self.ids):
                maybe = [i for i in self.ids if maybe_done(outcome[i])]
                undo = self._attach_again(maybe, "the old key pair")
                self._fail(f"detaching key pair {self.name} failed for "
                           + "; ".join(failure_lines(outcome, self.ids)) + f"; the key pair was not replaced; {undo}",
                           first_error(outcome))
        try:
            delete_key_pair(self.client, self.name)
        except EcsApiError as error:
            undo = self._attach_again(self.ids, "the old key pair") if self.ids else ""
            self._fail(f"deleting the old key pair {self.name} failed: {error}; it was not replaced"
                       + (f"; {undo}" if undo else ""), error)
        self.changes.add(f"deleted key pair {self.name}")

    def put_back(self, failure: Exception, wanted: Optional[PublicKey] = None) -> None:
        """The new key pair could not be made: import the old public key again, attach it again.

        Raises PartialChangeError, except when the new key pair turns out to be in place after
        all (an answer lost after the import landed): then the caller goes on with the attach.
        """
        error = failure if isinstance(failure, EcsApiError) else None
        text = f"replacing key pair {self.name} failed: {failure}"
        current = self._current()
        if current is not None and wanted is not None and same_key(current, wanted) is True:
            return
        if current is not None:
            self._fail(f"{text}; key pair {self.name} exists again, with a key this task did not make (someone else "
                       "created it meanwhile)" + self._orphaned_instances(created=True), error)
        old_key = api_public_key(self.old)
        if not self.restore:
            self._fail(f"{text}; the old key pair was an orphan (nobody held its private key) and is not put back: "
                       f"key pair {self.name} does not exist now" + self._orphaned_instances(), error)
        if old_key is None:
            self._fail(f"{text}; the old key pair cannot be put back (the API did not return its public key): key "
                       f"pair {self.name} does not exist now" + self._orphaned_instances(), error)
        group = self.old.get("ResourceGroupId") or None
        try:
            import_key(self.client, self.name, old_key, api_tags(self.old) or None, group, after_delete=True)
        except EcsApiError as again:
            self._fail(f"{text}; putting the old key pair back failed too ({again.code}, request id "
                       f"{again.request_id}): key pair {self.name} does not exist now" + self._orphaned_instances(),
                       error)
        self.changes.add(f"imported the old public key of key pair {self.name} again "
                         f"({old_key.fingerprint('sha256')})")
        undo = self._attach_again(self.ids, "the old key pair") if self.ids else ""
        self._fail(f"{text}; the old key pair was put back" + (f"; {undo}" if undo else "")
                   + "; running the task again tries the replacement again", error)

    def _current(self) -> Optional[Dict[str, Any]]:
        """The key pair of the name now, or None (also when it cannot be read: then the import decides)."""
        try:
            return get_key_pair(self.client, self.name)
        except EcsApiError:
            return None

    def attach_new(self) -> None:
        """Attach the new key pair to the instances the old one was detached from."""
        if not self.ids:
            return
        done, outcome = bind(self.client, attach_key_pair, self.name, self.ids)
        if done:
            self.changes.add(f"attached the new key pair {self.name} to {join_ids(done)}")
        missing = [i for i in self.ids if i not in done]
        if missing:
            self._fail(f"the new key pair {self.name} is in place but attaching it failed for "
                       + "; ".join(failure_lines(outcome, missing)) + f": {join_ids(missing)} hold no key pair now. "
                       "A re-run of this task finds the key pair in place and does not attach it: run "
                       + attach_command(self.name, missing), first_error(outcome))

    def _attach_again(self, ids: Sequence[str], what: str) -> str:
        """Attach the key pair again to ids (undo of a detach); says how it went."""
        if not ids:
            return "no instance was detached"
        done, outcome = bind(self.client, attach_key_pair, self.name, ids)
        if done:
            self.changes.add(f"attached {what} {self.name} to {join_ids(done)} again")
        missing = [i for i in ids if i not in done]
        if not missing:
            return f"{what} was attached again to {join_ids(done)}"
        return (f"attaching {what} again failed for " + "; ".join(failure_lines(outcome, missing))
                + f": {join_ids(missing)} may hold no key pair now; run " + attach_command(self.name, missing))

    def _orphaned_instances(self, created: bool = False) -> str:
        again = "compares it" if created else "creates it"
        if not self.ids:
            return f"; running the task again {again}"
        return (f", and {join_ids(self.ids)} hold no key pair; running the task again {again}, then run "
                + attach_command(self.name, self.ids))

    def _fail(self, message: str, error: Optional[EcsApiError]) -> NoReturn:
        raise PartialChangeError(f"{message}; {describe_changes(self.changes.items)}", changes=self.changes.items,
                                 error=error)
