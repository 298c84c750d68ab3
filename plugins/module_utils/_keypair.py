# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: key pair decisions and actions behind ecs_keypair(_info)."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import (
    MAX_INSTANCE_IDS,
    EcsApiError,
    chunks,
    json_list,
    tag_params,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import (
    PublicKey,
    SSHKeyError,
    looks_like_private_key,
    parse_public_key,
)

# Public key types the ECS import accepts: the published list (the v00 certificates are left
# out because OpenSSH dropped them) plus ssh-ed25519, which the published list omits but which
# is what most people use today; a service that refuses it says so with its own error code.
ACCEPTED_KEY_TYPES = (
    "ssh-rsa", "ssh-dss",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "ssh-ed25519",
)
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9.:_-]{1,127}$")
MAX_TAGS = 20
NOT_FOUND_CODES = ("InvalidKeyPair.NotFound", "InvalidKeyPairName.NotFound")
ATTACHED_CODE = "InvalidParameter.KeypairAlreadyAttachedInstance"
# A lost reply: the service may or may not have acted.
AMBIGUOUS_CODES = ("ConnectionError", "Timeout", "InternalError", "MalformedResponse")
RSA_DEFAULT_BITS = 3072
ECDSA_CURVES = {256: "SECP256R1", 384: "SECP384R1", 521: "SECP521R1"}


class KeypairError(ValueError):
    """Bad input or a state we refuse to act on. The message never holds key material."""


# ---------------------------------------------------------------------------------------------
# Input checks: all run before the first API call.


def validate_name(name: str, option: str = "name") -> None:
    if not isinstance(name, str) or not name:
        raise KeypairError(f"{option} is required")
    if name.lower().startswith(("http://", "https://")):
        raise KeypairError(f"{option} must not start with http:// or https://")
    if not 2 <= len(name) <= 128:
        raise KeypairError(f"{option} must be 2 to 128 characters long, not {len(name)}")
    if not name[0].isascii() or not name[0].isalpha():
        raise KeypairError(f"{option} {name!r} must start with a letter")
    if not NAME_PATTERN.match(name):
        raise KeypairError(f"{option} {name!r} may hold only letters, digits, '.', ':', '_' and '-'")


def validate_pattern(pattern: str) -> None:
    """A describe filter: the name rules, with '*' allowed anywhere as a wildcard."""
    if "*" not in pattern:
        validate_name(pattern, "names")
        return
    if not re.match(r"^[A-Za-z0-9.:_*-]{1,128}$", pattern):
        raise KeypairError(f"name pattern {pattern!r} may hold only letters, digits, '.', ':', '_', '-' and '*'")


def validate_tags(tags: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    if tags is None:
        return None
    if len(tags) > MAX_TAGS:
        raise KeypairError(f"at most {MAX_TAGS} tags are allowed, not {len(tags)}")
    clean = {}
    for key, value in tags.items():
        key = str(key)
        text = "" if value is None else str(value)
        if not key or len(key) > 128:
            raise KeypairError(f"tag key {key[:40]!r} must be 1 to 128 characters long")
        if key.lower().startswith(("aliyun", "acs:")):
            raise KeypairError(f"tag key {key!r} must not start with 'aliyun' or 'acs:'")
        for part, what in ((key, "key"), (text, "value")):
            if "http://" in part or "https://" in part:
                raise KeypairError(f"tag {what} of {key!r} must not contain http:// or https://")
        if len(text) > 128:
            raise KeypairError(f"tag value of {key!r} is longer than 128 characters")
        clean[key] = text
    return clean


def check_key_type(key: PublicKey) -> None:
    if key.key_type not in ACCEPTED_KEY_TYPES:
        raise KeypairError(f"key type {key.key_type} cannot be imported into ECS; accepted types: "
                           + ", ".join(ACCEPTED_KEY_TYPES))


def load_public_key(text: Optional[str], path: Optional[str]) -> Optional[PublicKey]:
    """The public key to import from public_key or public_key_path, validated locally."""
    if path is not None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(64 * 1024 + 1)
        except OSError as exc:
            raise KeypairError(f"cannot read public_key_path {path}: {exc.strerror or type(exc).__name__}") from None
        if len(raw) > 64 * 1024:
            raise KeypairError(f"public_key_path {path} is larger than 64 KiB; it is not a public key")
        source = f"public_key_path {path}"
        data: Any = raw
    elif text is not None:
        source, data = "public_key", text
    else:
        return None
    if looks_like_private_key(data):
        raise KeypairError(f"{source} holds a private key; give the public key (for example the .pub file)")
    try:
        key = parse_public_key(data)
    except SSHKeyError as exc:
        raise KeypairError(f"{source} is not a valid public key: {exc}") from None
    check_key_type(key)
    return key


# ---------------------------------------------------------------------------------------------
# Private key files: written atomically, mode 0600, never over a different file unless asked.


def check_private_key_target(path: str) -> bool:
    """Whether a file exists at path; raises when the file could not be written there."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    if os.path.islink(path):
        raise KeypairError(f"private_key_path {path} is a symbolic link; refusing to write through it")
    # A link planted in place of the directory (a ~/.ssh pointing elsewhere) would put the key
    # where its owner did not choose; the same rule as authorized_keys: last directory component.
    if os.path.islink(directory):
        raise KeypairError(f"the directory of private_key_path {path} is a symbolic link; refusing to write through it")
    if os.path.isdir(path):
        raise KeypairError(f"private_key_path {path} is a directory")
    if not os.path.isdir(directory):
        raise KeypairError(f"the directory of private_key_path {path} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise KeypairError(f"the directory of private_key_path {path} is not writable")
    return os.path.exists(path)


class PrivateKeyFile:
    """A temporary file next to the target, opened before the key exists.

    Opening it first moves every likely failure (missing directory, permissions, no inodes)
    before the API call that creates the key, so the key cannot be lost between the reply and
    the file; what remains after the reply is one write, fsync and rename.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        try:
            fd, self.temp = tempfile.mkstemp(prefix=".ecs-keypair-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise KeypairError(f"cannot create a file next to private_key_path {self.path}: "
                               f"{exc.strerror or type(exc).__name__}") from None
        os.fchmod(fd, 0o600)
        self._fd: Optional[int] = fd

    def commit(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise KeypairError("private key file already written")
        self._fd = None
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temp, self.path)
        self._sync_directory()

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.temp)
        except OSError:
            pass

    def _sync_directory(self) -> None:
        try:
            fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def public_key_of_private_file(path: str, passphrase: Optional[str]) -> PublicKey:
    from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import public_key_from_private
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024 * 1024 + 1)
    except OSError as exc:
        raise KeypairError(f"cannot read private_key_path {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return public_key_from_private(data, passphrase)
    except ImportError:
        raise KeypairError(missing_cryptography()) from None
    except SSHKeyError as exc:
        raise KeypairError(f"private_key_path {path} does not hold a usable private key: {exc}") from None


def public_key_of_private_text(data: str) -> Optional[PublicKey]:
    from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import public_key_from_private
    try:
        return public_key_from_private(data)
    except (ImportError, SSHKeyError):
        return None


def missing_cryptography() -> str:
    return ("the Python package 'cryptography' is needed to generate or read private keys; install it "
            "for the Python that runs this module (the controller, with hosts: localhost)")


def generate_private_key(key_type: str, key_size: Optional[int], passphrase: Optional[str],
                         comment: str) -> Tuple[bytes, PublicKey]:
    """(OpenSSH private key file bytes, public key) of a new key made here."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:
        raise KeypairError(missing_cryptography()) from None
    if key_type == "rsa":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=key_size or RSA_DEFAULT_BITS)
    elif key_type == "ecdsa":
        key = ec.generate_private_key(getattr(ec, ECDSA_CURVES[key_size or 256])())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    encryption: Any = serialization.NoEncryption()
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
    try:
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm without the bcrypt package
        if not passphrase or type(exc).__name__ != "UnsupportedAlgorithm":
            raise
        if key_type == "ed25519":
            raise KeypairError("an ed25519 key with a passphrase needs the Python package 'bcrypt' next to "
                               "'cryptography' (OpenSSH's own format); use key_type rsa or ecdsa, or install bcrypt") from None
        # Encrypted PKCS#8 PEM: OpenSSH reads it for RSA and ECDSA keys, no bcrypt needed.
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, parse_public_key(public.decode("ascii") + (" " + comment if comment else ""))


def check_key_size(key_type: str, key_size: Optional[int]) -> None:
    if key_size is None:
        return
    if key_type == "rsa" and not 2048 <= key_size <= 16384:
        raise KeypairError("key_size for rsa must be between 2048 and 16384")
    if key_type == "ecdsa" and key_size not in ECDSA_CURVES:
        raise KeypairError("key_size for ecdsa must be 256, 384 or 521")
    if key_type == "ed25519":
        raise KeypairError("key_size does not apply to ed25519 keys")


# ---------------------------------------------------------------------------------------------
# Reading key pairs back.


def api_tags(item: Mapping[str, Any]) -> Dict[str, str]:
    tags = item.get("Tags") or {}
    entries = tags.get("Tag") if isinstance(tags, dict) else tags
    out = {}
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("TagKey") is not None:
            out[str(entry["TagKey"])] = "" if entry.get("TagValue") is None else str(entry["TagValue"])
    return out


def api_public_key(item: Optional[Mapping[str, Any]]) -> Optional[PublicKey]:
    """The key pair's public key as the API returns it, or None when absent or unreadable."""
    if not item or not item.get("PublicKey"):
        return None
    try:
        return parse_public_key(str(item["PublicKey"]))
    except SSHKeyError:
        return None


def fingerprint_hex(value: Optional[str]) -> str:
    return re.sub(r"[^0-9a-f]", "", (value or "").lower().replace("md5:", ""))


def same_key(item: Mapping[str, Any], desired: PublicKey) -> Optional[bool]:
    """True/False by public key material; None when the API gave nothing to compare with.

    The API fingerprint is only a fallback, and only when it is a plain MD5 of the blob.
    """
    current = api_public_key(item)
    if current is not None:
        return current.identity() == desired.identity()
    api_print = fingerprint_hex(item.get("KeyPairFingerPrint"))
    if len(api_print) == 32:
        return api_print == fingerprint_hex(desired.fingerprint("md5"))
    return None


def describe_result(item: Optional[Mapping[str, Any]], *, name: str, public_key: Optional[PublicKey] = None,
                    key_pair_id: Optional[str] = None, private_key_path: Optional[str] = None,
                    instances: Optional[List[Dict[str, Any]]] = None,
                    fallback_tags: Optional[Mapping[str, str]] = None,
                    fallback_group: Optional[str] = None) -> Dict[str, Any]:
    """The documented key_pair result; fingerprints are computed here from the public key."""
    item = item or {}
    key = api_public_key(item) or public_key
    result: Dict[str, Any] = {
        "name": item.get("KeyPairName", name),
        "id": item.get("KeyPairId") or key_pair_id,
        "fingerprint": item.get("KeyPairFingerPrint"),
        "fingerprint_md5": key.fingerprint("md5") if key else None,
        "fingerprint_sha256": key.fingerprint("sha256") if key else None,
        "public_key": key.identity() if key else None,
        "key_type": key.key_type if key else None,
        "creation_time": item.get("CreationTime"),
        "tags": api_tags(item) if item else dict(fallback_tags or {}),
        "resource_group_id": item.get("ResourceGroupId") or fallback_group,
    }
    if private_key_path is not None:
        result["private_key_path"] = private_key_path
    if instances is not None:
        result["instances"] = instances
    return result


def instance_summary(item: Mapping[str, Any]) -> Dict[str, Any]:
    ips = (item.get("PublicIpAddress") or {}).get("IpAddress") if isinstance(item.get("PublicIpAddress"), dict) else []
    return {"instance_id": item.get("InstanceId"), "instance_name": item.get("InstanceName"),
            "status": item.get("Status"), "os_type": item.get("OSType"), "public_ip_addresses": list(ips or [])}


def diff_view(item: Optional[Mapping[str, Any]], public_key: Optional[PublicKey] = None,
              tags: Optional[Mapping[str, str]] = None, group: Optional[str] = None) -> Dict[str, Any]:
    """What diff mode shows: the public key and metadata, never private material."""
    if item is None and public_key is None and tags is None:
        return {"state": "absent"}
    key = api_public_key(item) or public_key
    return {
        "state": "present",
        "public_key": key.identity() if key else None,
        "fingerprint_sha256": key.fingerprint("sha256") if key else None,
        "tags": dict(tags) if tags is not None else api_tags(item or {}),
        "resource_group_id": group if group is not None else (item or {}).get("ResourceGroupId"),
    }


# ---------------------------------------------------------------------------------------------
# API actions with the checks the API needs around them.


def attach_or_detach(client: Any, action: str, name: str, instance_ids: List[str]) -> None:
    """AttachKeyPair / DetachKeyPair in batches of 50; partial failures become an error."""
    failures = []
    for group in chunks(instance_ids, MAX_INSTANCE_IDS):
        reply = client.call(action, {"KeyPairName": name, "InstanceIds": json_list(group)})
        results = (reply.get("Results") or {}).get("Result") or []
        for entry in results:
            if isinstance(entry, dict) and str(entry.get("Success")).lower() != "true":
                failures.append(f"{entry.get('InstanceId')}: {entry.get('Code')} {entry.get('Message')}")
        if not results and int(reply.get("FailCount") or 0):
            failures.append(f"{reply.get('FailCount')} instances failed")
    if failures:
        raise EcsApiError(code="PartialFailure", action=action,
                          message=f"{len(failures)} of {len(instance_ids)} instances failed: " + "; ".join(failures))


def delete_key_pair(client: Any, name: str) -> bool:
    """DeleteKeyPairs for one name; False when it was gone already."""
    try:
        client.call("DeleteKeyPairs", {"KeyPairNames": json_list([name])})
    except EcsApiError as error:
        if error.code in NOT_FOUND_CODES:
            return False
        raise
    return True


def tag_changes(current: Mapping[str, str], desired: Optional[Mapping[str, str]],
                purge: bool) -> Tuple[Dict[str, str], List[str]]:
    """(tags to set, tag keys to remove)."""
    if desired is None:
        return {}, []
    to_set = {k: v for k, v in desired.items() if current.get(k) != v}
    to_remove = sorted(k for k in current if k not in desired) if purge else []
    return to_set, to_remove


def apply_tags(client: Any, name: str, to_set: Mapping[str, str], to_remove: List[str]) -> None:
    resource = {"ResourceType": "keypair", "ResourceId.1": name}
    if to_remove:
        params = dict(resource)
        params.update({f"TagKey.{i}": key for i, key in enumerate(to_remove, start=1)})
        client.call("UntagResources", params)
    if to_set:
        params = dict(resource)
        params.update(tag_params(to_set))
        client.call("TagResources", params)


def import_key_pair(client: Any, name: str, key: PublicKey, tags: Optional[Mapping[str, str]],
                    group: Optional[str], after_delete: bool = False) -> Dict[str, Any]:
    """ImportKeyPair. 'Already exists' with the same key means an earlier try landed: success.

    Right after our own delete the name can stay taken for a while (eventual consistency), so
    then 'already exists' with another key is retried with backoff.
    """
    params: Dict[str, Any] = {"KeyPairName": name, "PublicKeyBody": key.line(), "ResourceGroupId": group}
    params.update(tag_params(tags))
    tries = (client.retries + 1) if after_delete else 1
    for attempt in range(tries):
        try:
            return client.call("ImportKeyPair", params)
        except EcsApiError as error:
            if error.code != "KeyPair.AlreadyExist":
                raise
            current = client.get_key_pair(name)
            if current is not None and same_key(current, key):
                return current
            if attempt + 1 >= tries:
                raise
            client.pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def create_key_pair(client: Any, name: str, tags: Optional[Mapping[str, str]], group: Optional[str],
                    target: Optional[PrivateKeyFile], after_delete: bool = False) -> Tuple[Dict[str, Any], str]:
    """CreateKeyPair, then the private key straight into its file before anything else runs.

    Returns (reply without the private key, private key text). A reply lost in transit may
    leave a key pair whose private key nobody holds; such an orphan is deleted and the
    creation tried again, so a key pair never exists without its private key on our side.
    """
    params: Dict[str, Any] = {"KeyPairName": name, "ResourceGroupId": group}
    params.update(tag_params(tags))
    tries = client.retries + 1
    reply: Optional[Dict[str, Any]] = None
    for attempt in range(tries):
        try:
            reply = client.call("CreateKeyPair", params, idempotent=False)
            break
        except EcsApiError as error:
            last = attempt + 1 >= tries
            if error.code == "KeyPair.AlreadyExist" and after_delete and not last:
                client.pause(attempt)
                continue
            if error.code not in AMBIGUOUS_CODES:
                raise
            if _remove_orphan(client, name, error) and last:
                raise EcsApiError(code=error.code, action="CreateKeyPair", request_id=error.request_id,
                                  http_status=error.http_status,
                                  message=f"{error.message}; the reply with the private key was lost, and the "
                                          "key pair it created was deleted again (nobody holds its private "
                                          "key); running the task again is safe") from None
            if last:
                raise
            client.pause(attempt)
    if reply is None:  # pragma: no cover - the loop either breaks with a reply or raises
        raise EcsApiError(code="ConnectionError", action="CreateKeyPair", message="no reply")
    private = reply.pop("PrivateKeyBody", None)
    if not private or not isinstance(private, str):
        delete_key_pair(client, name)
        raise EcsApiError(code="MalformedResponse", action="CreateKeyPair", request_id=reply.get("RequestId"),
                          message="the reply carries no private key; the key pair was deleted again")
    if not private.endswith("\n"):
        private += "\n"
    if target is not None:
        try:
            target.commit(private.encode("utf-8"))
        except OSError as exc:
            # The key exists only in this process now. It is never printed; the key pair that
            # nobody could log in with is removed instead, so a re-run starts clean.
            target.discard()
            try:
                deleted = delete_key_pair(client, name)
                outcome = "the key pair was deleted again" if deleted else "the key pair is gone"
            except EcsApiError as error:
                outcome = f"deleting the key pair failed too ({error.code}, request id {error.request_id}); delete it"
            raise KeypairError(f"key pair {name} was created but its private key could not be written to "
                               f"{target.path} ({exc.strerror or type(exc).__name__}); the private key is not shown "
                               f"and is lost; {outcome}") from None
    return reply, private


def _remove_orphan(client: Any, name: str, lost: EcsApiError) -> bool:
    """After a lost CreateKeyPair reply: delete what it may have created. True when it had.

    DeleteKeyPairs is called straight away rather than after a DescribeKeyPairs: the delete
    answers 'was it there' by itself, and it must happen even when reads keep failing, since a
    key pair left behind here has no private key anywhere. The caller only creates names it has
    just seen absent, so what is deleted here is what the lost call made.
    """
    try:
        return delete_key_pair(client, name)
    except EcsApiError as error:
        raise EcsApiError(code=lost.code, action="CreateKeyPair", request_id=lost.request_id,
                          http_status=lost.http_status,
                          message=f"{lost.message}; the reply with the private key was lost, and deleting what "
                                  f"it may have created failed too ({error.code}, request id {error.request_id}): "
                                  f"key pair {name} may exist with nobody holding its private key; delete it "
                                  "(state=absent) and run the task again") from None


class Plan:
    """What one ecs_keypair run decided, filled in as it goes."""

    def __init__(self) -> None:
        self.changed = False
        self.action = "unchanged"
        self.warnings: List[str] = []
        self.private_key: Optional[str] = None
        self.key_pair_id: Optional[str] = None
        self.public_key: Optional[PublicKey] = None


def _mode(params: Mapping[str, Any]) -> str:
    if params.get("public_key") is not None or params.get("public_key_path") is not None:
        return "import"
    return "local" if params.get("generate") == "local" else "cloud"


def check_options(params: Mapping[str, Any]) -> str:
    """Option combinations argument_spec cannot express. Returns the mode."""
    mode = _mode(params)
    validate_name(params["name"])
    if params["state"] == "absent":
        return mode
    if mode == "import" and params.get("generate") == "local":
        raise KeypairError("generate=local makes the key here; it cannot be combined with public_key or public_key_path")
    if mode != "local":
        for option in ("key_type", "key_size", "passphrase"):
            if params.get(option) is not None:
                raise KeypairError(f"{option} applies only to generate=local")
    if mode == "import" and (params.get("return_private_key") or params.get("private_key_path")):
        raise KeypairError("an imported key pair has no private key here; "
                           "private_key_path and return_private_key apply to created key pairs")
    if mode == "local":
        if not params.get("private_key_path"):
            raise KeypairError("generate=local needs private_key_path: the private key is written there and nowhere else")
        if params.get("return_private_key"):
            raise KeypairError("return_private_key applies to generate=cloud; with generate=local the key is in private_key_path")
        check_key_size(params.get("key_type") or "rsa", params.get("key_size"))
    if mode == "cloud" and not params.get("private_key_path") and not params.get("return_private_key"):
        raise KeypairError("CreateKeyPair returns the private key once and never again: set private_key_path "
                           "(or return_private_key=true to get it in the result)")
    validate_tags(params.get("tags"))
    return mode


def ensure_present(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    """state=present: create, generate, import or reconcile one key pair. Returns the result."""
    mode = check_options(params)
    name = params["name"]
    tags = validate_tags(params.get("tags"))
    group = params.get("resource_group_id")
    path = params.get("private_key_path")
    path = os.path.abspath(os.path.expanduser(path)) if path else None
    plan = Plan()

    desired = load_public_key(params.get("public_key"), params.get("public_key_path"))
    file_exists = check_private_key_target(path) if path else False
    local_key = None
    if mode == "local" and file_exists:
        # The file is the source of truth of a locally generated key pair.
        local_key = public_key_of_private_file(path, params.get("passphrase"))
        check_key_type(local_key)
        desired = local_key

    item = client.get_key_pair(name)
    if mode == "cloud" and file_exists and item is not None:
        # Only an existing key pair is compared with the file; a new one needs the overwrite opt-in.
        local_key = public_key_of_private_file(path, params.get("passphrase"))
    before = diff_view(item)
    mismatch = False
    if item is not None:
        compare_with = desired or local_key
        if compare_with is not None:
            verdict = same_key(item, compare_with)
            if verdict is None:
                plan.warnings.append(f"the API returned no public key for {name}; it cannot be compared and is left as it is")
            mismatch = verdict is False
        elif mode == "local":
            mismatch = True  # the key pair exists but its private key is not in private_key_path
        else:
            plan.warnings.append(
                f"key pair {name} exists and was generated by the cloud; its private key was returned only when it "
                "was created and cannot be fetched again, so it is neither written nor returned")
    if mismatch:
        current = api_public_key(item)
        wanted = compare_with.fingerprint("sha256") if compare_with else "a new key (private_key_path does not exist)"
        what = (f"key pair {name} exists with another public key ({current.fingerprint('sha256') if current else 'unknown'}) "
                f"than the one wanted ({wanted})")
        policy = params.get("on_mismatch") or "fail"
        if policy == "fail":
            raise KeypairError(f"{what}; set on_mismatch=replace to replace it or on_mismatch=keep to leave it")
        if policy == "keep":
            plan.action = "kept"
            plan.warnings.append(f"{what}; kept as it is (on_mismatch=keep)")

    replace = mismatch and (params.get("on_mismatch") == "replace")
    instances: List[Dict[str, Any]] = []
    if replace:
        instances = client.instances_holding(name)
        if instances and not params.get("detach_instances"):
            ids = ", ".join(str(i.get("InstanceId")) for i in instances[:10])
            raise KeypairError(f"key pair {name} is attached to {len(instances)} instance(s) ({ids}); set "
                               "detach_instances=true to detach it, replace it and attach the new key pair to them again")

    if item is None or replace:
        final_tags = tags if tags is not None else (api_tags(item) if item else None)
        if item is not None and group is None:
            group = item.get("ResourceGroupId") or None
        if mode == "cloud" and file_exists and not params.get("overwrite_private_key"):
            raise KeypairError(f"private_key_path {path} exists already; set overwrite_private_key=true to replace "
                               "it with the private key of the new key pair")
        plan.changed = True
        plan.action = "replaced" if replace else ("imported" if mode == "import" else "created")
        if not check_mode:
            _make_key_pair(client, params, mode, name, desired, final_tags, group, path, plan,
                           replacing=item if replace else None, instances=instances)
        else:
            plan.public_key = desired
        after = diff_view(None, plan.public_key, final_tags or {}, group) if check_mode else None
    else:
        after = None
        to_set, to_remove = tag_changes(api_tags(item), tags, params.get("purge_tags", True))
        if to_set or to_remove:
            plan.changed = True
            if plan.action == "unchanged":
                plan.action = "updated"
            if not check_mode:
                apply_tags(client, name, to_set, to_remove)
        current_group = item.get("ResourceGroupId")
        if group and current_group and group != current_group:
            plan.warnings.append(f"key pair {name} is in resource group {current_group}, not {group}; "
                                 "this module does not move key pairs between resource groups")
        if check_mode:
            merged = api_tags(item)
            if tags is not None:
                merged = dict(tags) if params.get("purge_tags", True) else dict(merged, **tags)
            after = diff_view(item, tags=merged)

    recreated = item is None or replace
    kept_path = path if mode != "import" else None
    if check_mode:
        final_item = None if recreated else item
    else:
        # Read back what the service holds now, so the result is its reading, not our wish.
        final_item = client.get_key_pair(name) if plan.changed else item
        after = diff_view(final_item) if final_item else diff_view(None, plan.public_key, tags or {}, group)
    listed = None
    if params.get("include_instances"):
        listed = [instance_summary(i) for i in client.instances_holding(name)] if final_item else []
    key_pair = describe_result(final_item, name=name, public_key=plan.public_key or desired or local_key,
                               key_pair_id=plan.key_pair_id, private_key_path=kept_path, instances=listed,
                               fallback_tags=tags if recreated and tags is not None else (api_tags(item) if item else {}),
                               fallback_group=group)
    if check_mode and not recreated and after is not None:
        key_pair["tags"] = after["tags"]
    result: Dict[str, Any] = {"changed": plan.changed, "action": plan.action, "key_pair": key_pair,
                              "diff": {"before": before, "after": after if after is not None else before}}
    if plan.private_key is not None:
        result["private_key"] = plan.private_key
    if plan.warnings:
        result["warnings"] = plan.warnings
    return result


def _make_key_pair(client: Any, params: Mapping[str, Any], mode: str, name: str, desired: Optional[PublicKey],
                   tags: Optional[Mapping[str, str]], group: Optional[str], path: Optional[str], plan: Plan,
                   replacing: Optional[Mapping[str, Any]], instances: List[Dict[str, Any]]) -> None:
    """The mutating half of ensure_present: files first, then the API, in the safe order."""
    target = PrivateKeyFile(path) if path and mode in ("cloud", "local") and (mode == "cloud" or desired is None) else None
    try:
        if mode == "local" and desired is None:
            # The private key goes to disk before the public key goes to the cloud: if the import
            # fails, the next run finds the file and imports the same key.
            private, desired = generate_private_key(params.get("key_type") or "rsa", params.get("key_size"),
                                                    params.get("passphrase"), name)
            if target is None:  # pragma: no cover - check_options requires private_key_path
                raise KeypairError("generate=local needs private_key_path")
            target.commit(private)
            target = None
        ids = [str(i.get("InstanceId")) for i in instances]
        if replacing is not None:
            if ids:
                attach_or_detach(client, "DetachKeyPair", name, ids)
            delete_key_pair(client, name)
        if mode == "cloud":
            reply, private_text = create_key_pair(client, name, tags, group, target,
                                                  after_delete=replacing is not None)
            target = None
            plan.key_pair_id = reply.get("KeyPairId")
            plan.public_key = public_key_of_private_text(private_text)
            if params.get("return_private_key"):
                plan.private_key = private_text
        else:
            if desired is None:  # pragma: no cover - import and local modes always have a key here
                raise KeypairError("no public key to import")
            reply = import_key_pair(client, name, desired, tags, group, after_delete=replacing is not None)
            plan.key_pair_id = reply.get("KeyPairId")
            plan.public_key = desired
        if ids:
            attach_or_detach(client, "AttachKeyPair", name, ids)
            plan.warnings.append(f"the new key pair was attached to {len(ids)} instance(s); it takes effect when "
                                 "each instance restarts")
    finally:
        if target is not None:
            target.discard()


def ensure_absent(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    name = params["name"]
    validate_name(name)
    item = client.get_key_pair(name)
    if item is None:
        return {"changed": False, "action": "absent", "key_pair": {},
                "diff": {"before": {"state": "absent"}, "after": {"state": "absent"}}}
    instances = client.instances_holding(name)
    ids = [str(i.get("InstanceId")) for i in instances]
    warnings: List[str] = []
    detach = bool(params.get("detach_instances"))
    if not check_mode:
        if ids and detach:
            attach_or_detach(client, "DetachKeyPair", name, ids)
        try:
            delete_key_pair(client, name)
        except EcsApiError as error:
            if error.code != ATTACHED_CODE:
                raise
            raise KeypairError(f"key pair {name} is attached to {len(ids) or 'some'} instance(s) "
                               f"({', '.join(ids[:10])}) and ECS refuses to delete it ({error.code}, request id "
                               f"{error.request_id}); set detach_instances=true to detach it first") from None
    if ids and not detach:
        warnings.append(f"key pair {name} is still attached to {len(ids)} instance(s) ({', '.join(ids[:10])}); they "
                        "keep using it and its name stays taken until it is detached (some ECS regions refuse the "
                        "delete instead: then set detach_instances=true)")
    elif ids:
        warnings.append(f"key pair {name} was detached from {len(ids)} instance(s); it takes effect when each restarts")
    result: Dict[str, Any] = {
        "changed": True, "action": "deleted",
        "key_pair": describe_result(item, name=name,
                                    instances=[instance_summary(i) for i in instances]
                                    if params.get("include_instances") else None),
        "diff": {"before": diff_view(item), "after": {"state": "absent"}},
    }
    if warnings:
        result["warnings"] = warnings
    return result


# ---------------------------------------------------------------------------------------------
# Deleting many key pairs in one task: DeleteKeyPairs takes up to 100 names a call.

MAX_DELETE_NAMES = 100
# Up to this many names, each is looked up on its own (one DescribeKeyPairs / DescribeInstances
# per name); beyond it one paged listing of the region (50 key pairs, 100 instances a page) is
# cheaper.
PER_NAME_LOOKUPS = 5


def unique_names(names: List[str]) -> List[str]:
    """The names in their first order, each once, every one checked before any call."""
    seen: List[str] = []
    for name in names:
        validate_name(name, option="names")
        if name not in seen:
            seen.append(name)
    return seen


def existing_key_pairs(client: Any, names: List[str]) -> Dict[str, Dict[str, Any]]:
    """{name: item} for those of the names that exist."""
    if len(names) <= PER_NAME_LOOKUPS:
        items = (client.get_key_pair(name) for name in names)
        return {item["KeyPairName"]: item for item in items if item is not None}
    wanted = set(names)
    return {item["KeyPairName"]: item for item in client.describe_key_pairs()
            if isinstance(item, dict) and item.get("KeyPairName") in wanted}


def instances_by_key_pair(client: Any, names: List[str]) -> Dict[str, List[Dict[str, Any]]]:
    """{name: instances holding it} for the names (absent when none holds it)."""
    if len(names) <= PER_NAME_LOOKUPS:
        holders = {name: client.instances_holding(name) for name in names}
        return {name: items for name, items in holders.items() if items}
    wanted = set(names)
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for instance in client.describe_instances():
        if isinstance(instance, dict) and instance.get("KeyPairName") in wanted:
            grouped.setdefault(instance["KeyPairName"], []).append(instance)
    return grouped


def delete_batch(client: Any, batch: List[str]) -> None:
    """DeleteKeyPairs for up to 100 names that existed a moment ago.

    The call is all or nothing: one missing name (an earlier try whose reply was lost, or
    someone else's delete) fails the batch, so then the names still there are deleted again.
    """
    try:
        client.call("DeleteKeyPairs", {"KeyPairNames": json_list(batch)})
    except EcsApiError as error:
        if error.code not in NOT_FOUND_CODES:
            raise
        still_there = existing_key_pairs(client, batch)
        left = [name for name in batch if name in still_there]
        if left:
            client.call("DeleteKeyPairs", {"KeyPairNames": json_list(left)})


def _deleted_so_far(error: EcsApiError, done: List[str], total: int) -> EcsApiError:
    """The error of a failed batch, saying how far the task got; a re-run deletes the rest."""
    progress = (f"{len(done)} of {total} key pairs were deleted before this call failed"
                if done else "no key pair was deleted")
    return EcsApiError(code=error.code, action=error.action or "DeleteKeyPairs", request_id=error.request_id,
                       http_status=error.http_status,
                       message=f"{error.message}; {progress}; running the task again deletes the rest")


def ensure_absent_many(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    """state=absent with names: ceil(N/100) DeleteKeyPairs, after reads that find what exists."""
    names = unique_names(list(params["names"]))
    found = existing_key_pairs(client, names) if names else {}
    targets = [name for name in names if name in found]
    result: Dict[str, Any] = {"changed": bool(targets), "action": "deleted" if targets else "absent",
                              "key_pair": {}, "deleted": targets}
    holders = instances_by_key_pair(client, targets) if targets else {}
    detach = bool(params.get("detach_instances"))
    if targets and not check_mode:
        if detach:
            for name in targets:
                if name in holders:
                    attach_or_detach(client, "DetachKeyPair", name, [str(i.get("InstanceId")) for i in holders[name]])
        done: List[str] = []
        for batch in chunks(targets, MAX_DELETE_NAMES):
            try:
                delete_batch(client, batch)
            except EcsApiError as error:
                if error.code == ATTACHED_CODE:
                    attached = [name for name in batch if name in holders] or batch
                    raise KeypairError(f"ECS refuses to delete key pairs that instances hold ({error.code}, request "
                                       f"id {error.request_id}): {', '.join(attached[:10])}; "
                                       f"{len(done)} of {len(targets)} were deleted before; set "
                                       "detach_instances=true to detach them first") from None
                raise _deleted_so_far(error, done, len(targets)) from None
            done.extend(batch)
    held = [name for name in targets if name in holders]
    if held:
        count = sum(len(holders[name]) for name in held)
        result["warnings"] = [
            f"{len(held)} key pair(s) ({', '.join(held[:10])}) were held by {count} instance(s): "
            + ("they were detached first; it takes effect when each instance restarts" if detach else
               "they keep using them and the names stay taken until they are detached")]
    include = params.get("include_instances")
    result["key_pairs"] = [describe_result(found[name], name=name,
                                           instances=[instance_summary(i) for i in holders.get(name, [])]
                                           if include else None) for name in targets]
    result["diff"] = {"before": {"key_pairs": {name: diff_view(found[name]) for name in targets}},
                      "after": {"key_pairs": {}}}
    return result


# ---------------------------------------------------------------------------------------------
# ecs_keypair_info

# (The same trade-off as PER_NAME_LOOKUPS, for the instances of the key pairs found.)
PER_KEY_INSTANCE_LOOKUPS = PER_NAME_LOOKUPS


def list_key_pairs(client: Any, params: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Key pairs by exact names or '*' patterns, fingerprint, tags and resource group; all pages."""
    names = params.get("names") or []
    for name in names:
        validate_pattern(name)
    tags = validate_tags(params.get("tags"))
    include_public_key = params.get("include_public_key", True)
    filters = dict(fingerprint=params.get("fingerprint"), resource_group_id=params.get("resource_group_id"),
                   tags=tags, include_public_key=include_public_key)
    exact = [name for name in names if "*" not in name]
    queries: List[Optional[str]] = [name for name in names if "*" in name]
    # Many exact names: one paged listing of the region beats one call per name.
    many_exact = len(exact) > PER_NAME_LOOKUPS
    exact_set = set(exact)
    queries += [None] if many_exact or not names else exact
    found: Dict[str, Dict[str, Any]] = {}
    for query in queries:
        for item in client.describe_key_pairs(name=query, **filters):
            if not isinstance(item, dict) or "KeyPairName" not in item:
                continue
            if query is None and many_exact and item["KeyPairName"] not in exact_set:
                continue
            if query is not None and "*" not in query and item["KeyPairName"] != query:
                continue  # exact names are exact, whatever the service does with them
            found.setdefault(item["KeyPairName"], item)
    items = [found[key] for key in sorted(found)]
    holders: Optional[Dict[str, List[Dict[str, Any]]]] = None
    if params.get("include_instances"):
        holders = {}
        if len(items) <= PER_KEY_INSTANCE_LOOKUPS:
            for item in items:
                holders[item["KeyPairName"]] = client.instances_holding(item["KeyPairName"])
        elif items:
            for instance in client.describe_instances():
                if isinstance(instance, dict) and instance.get("KeyPairName"):
                    holders.setdefault(instance["KeyPairName"], []).append(instance)
    results = []
    for item in items:
        instances = None
        if holders is not None:
            instances = [instance_summary(i) for i in holders.get(item["KeyPairName"], [])]
        entry = describe_result(item, name=item["KeyPairName"], instances=instances)
        if not include_public_key:
            entry["public_key"] = None
        results.append(entry)
    return results
