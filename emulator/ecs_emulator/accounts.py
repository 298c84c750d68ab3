"""Accounts and their AccessKey pairs.

Either read from a JSON file (--accounts) or, without one, two accounts ("default" and "second")
whose keys are generated once and kept in the state file, so that they survive restarts.
File format:

    {"accounts": [
        {"name": "default",
         "access_keys": [{"id": "LTAI...", "secret": "...",
                          "security_token": "optional: requests must then carry this STS token"}],
         "resource_groups": ["rg-optional-extra-ids"],
         "uid": "optional: the account id in role ARNs (default: 16 digits derived from the name)",
         "roles": [{"name": "deploy", "trusted_accounts": ["second"], "max_session_duration": 3600,
                    "external_id": "optional"}],
         "oidc_providers": [{"name": "ack", "issuer": "https://oidc.example", "client_ids": ["sts.aliyuncs.com"],
                             "public_key": "-----BEGIN PUBLIC KEY-----..."}]},
        ...]}

Roles: STS AssumeRole accepts any role name of the caller's own account; a role of another
account only when listed here with the caller's account (name or uid) in trusted_accounts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import ApiError

from .state import State


@dataclass(frozen=True)
class AccessKey:
    id: str
    secret: str
    security_token: str | None
    account: str


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class OidcProvider:
    """An OIDC identity provider registered in an account: its issuer URL, the client ids
    (audiences) it accepts, and the RSA public key its tokens are signed with (RS256)."""

    name: str
    issuer: str
    client_ids: tuple[str, ...]
    public_key: rsa.RSAPublicKey

    def audiences_of(self, claims: dict) -> list[str]:
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
        return [a for a in auds if a in self.client_ids]

    def verify(self, token: str, now: float) -> dict:
        """The token's claims, or the error STS answers (STS error code table, AssumeRoleWithOIDC)."""
        def invalid(message: str) -> ApiError:
            return ApiError("AuthenticationFail.OIDCToken.Invalid", message, 401)

        if not token:
            raise invalid("The OIDCToken can not empty.")
        if len(token) > 20000:
            raise invalid("The Jwt content is invalid that cannot be recognized.")
        parts = token.split(".")
        if len(parts) != 3:
            raise invalid("The number of Jwt field should be divided into 3 parts with '.' .")
        try:
            header, claims, signature = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1])), _b64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise invalid("Cannot decode base64 encoded response(format invalided).") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise invalid("The Jwt content is invalid that cannot be recognized.")
        if header.get("alg") != "RS256":
            raise invalid(f"The algorithm {str(header.get('alg'))[:16]} that be specified in Jwt header is unknown.")
        try:
            self.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(),
                                   hashes.SHA256())
        except (InvalidSignature, UnicodeEncodeError):
            raise ApiError("AuthenticationFail.OIDCToken.InvalidSignature",
                           "OIDC token validate failed: invalid signature.", 401) from None
        if claims.get("iss") != self.issuer:
            # The published table has no code of its own for this case: the emulator's choice.
            raise invalid("The issuer of the OIDCToken does not match the OIDC provider.")
        if not self.audiences_of(claims):
            raise ApiError("AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.", 401)
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
            raise ApiError("AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.", 401)
        return claims


@dataclass
class Account:
    name: str
    access_keys: list[AccessKey]
    resource_groups: list[str] = field(default_factory=list)
    uid: str = ""
    roles: dict[str, dict] = field(default_factory=dict)
    oidc_providers: dict[str, OidcProvider] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.uid:
            # Stable per account name, like the default resource group.
            self.uid = str(int(hashlib.sha256(self.name.encode()).hexdigest()[:13], 16)).rjust(16, "1")[:16]

    def role(self, name: str) -> dict | None:
        """The role's entry in the accounts file (role names are case-insensitive in RAM)."""
        return self.roles.get(name.lower())

    @property
    def default_resource_group(self) -> str:
        # Stable per account name, so that a restart keeps the same id.
        return "rg-" + hashlib.sha256(self.name.encode()).hexdigest()[:15]


class AccountsError(ValueError):
    pass


def _parse(doc: object) -> list[Account]:
    if not isinstance(doc, dict) or not isinstance(doc.get("accounts"), list) or not doc["accounts"]:
        raise AccountsError('expected {"accounts": [ ... ]} with at least one account')
    accounts, seen_ids, seen_names = [], set(), set()
    for i, entry in enumerate(doc["accounts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise AccountsError(f"account #{i + 1}: needs a non-empty string 'name'")
        name = entry["name"]
        if name in seen_names:
            raise AccountsError(f"account {name!r} is listed twice")
        seen_names.add(name)
        keys = []
        for k in entry.get("access_keys") or []:
            if not isinstance(k, dict) or not isinstance(k.get("id"), str) or not isinstance(k.get("secret"), str) \
                    or not k["id"] or not k["secret"]:
                raise AccountsError(f"account {name!r}: every access key needs string 'id' and 'secret'")
            if k["id"] in seen_ids:
                raise AccountsError(f"access key id {k['id']!r} is used twice")
            seen_ids.add(k["id"])
            token = k.get("security_token")
            if token is not None and not isinstance(token, str):
                raise AccountsError(f"account {name!r}: security_token must be a string")
            keys.append(AccessKey(k["id"], k["secret"], token or None, name))
        if not keys:
            raise AccountsError(f"account {name!r}: needs at least one access key")
        groups = entry.get("resource_groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise AccountsError(f"account {name!r}: resource_groups must be a list of strings")
        accounts.append(Account(name, keys, list(groups), _uid(name, entry.get("uid")), _roles(name, entry),
                                _oidc_providers(name, entry)))
    return accounts


def _uid(name: str, uid: object) -> str:
    if uid is None:
        return ""
    if not isinstance(uid, str) or not uid.isdigit() or len(uid) > 32:
        raise AccountsError(f"account {name!r}: uid must be a string of digits")
    return uid


def _roles(name: str, entry: dict) -> dict[str, dict]:
    roles = {}
    for role in entry.get("roles") or []:
        if not isinstance(role, dict) or not isinstance(role.get("name"), str) or not role["name"]:
            raise AccountsError(f"account {name!r}: every role needs a string 'name'")
        trusted = role.get("trusted_accounts", [])
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise AccountsError(f"account {name!r}: role {role['name']!r}: trusted_accounts must be a list of strings")
        duration = role.get("max_session_duration", 3600)
        if not isinstance(duration, int) or not 3600 <= duration <= 43200:
            raise AccountsError(f"account {name!r}: role {role['name']!r}: max_session_duration must be 3600 to 43200")
        roles[role["name"].lower()] = role
    return roles


def _oidc_providers(name: str, entry: dict) -> dict[str, OidcProvider]:
    providers = {}
    for item in entry.get("oidc_providers") or []:
        where = f"account {name!r}: OIDC provider {item.get('name') if isinstance(item, dict) else item!r}"
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k]
                                                 for k in ("name", "issuer", "public_key")):
            raise AccountsError(f"{where}: needs string 'name', 'issuer' and 'public_key' (PEM)")
        ids = item.get("client_ids") or ["sts.aliyuncs.com"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise AccountsError(f"{where}: client_ids must be a list of strings")
        try:
            key = serialization.load_pem_public_key(item["public_key"].encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise AccountsError(f"{where}: public_key is not a PEM public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise AccountsError(f"{where}: public_key must be an RSA key (RS256)")
        providers[item["name"]] = OidcProvider(item["name"], item["issuer"], tuple(ids), key)
    return providers


def load_file(path: str) -> list[Account]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise AccountsError(f"cannot read accounts file {path}: {exc.__class__.__name__}") from None
    return _parse(doc)


def _new_key_id() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "LTAI5t" + "".join(secrets.choice(alphabet) for _pos in range(18))


def default_accounts(state: State) -> list[Account]:
    """Two accounts whose keys are made on first start and kept in the state file."""
    fresh = json.dumps({"accounts": [
        {"name": name, "access_keys": [{"id": _new_key_id(), "secret": secrets.token_urlsafe(22)}]}
        for name in ("default", "second")]})
    return _parse(json.loads(state.meta_set_default("accounts", fresh)))


def to_public_dict(accounts: list[Account]) -> list[dict]:
    """For the ready file: the credentials a test needs to talk to the emulator."""
    return [{"name": a.name, "uid": a.uid, "resource_groups": [a.default_resource_group] + a.resource_groups,
             "access_keys": [{"id": k.id, "secret": k.secret, "security_token": k.security_token}
                             for k in a.access_keys]} for a in accounts]
