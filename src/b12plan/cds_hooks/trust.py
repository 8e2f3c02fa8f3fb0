"""Trusting CDS clients: the signed JWT every CDS Hooks 2.0 call carries, checked.

CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients): each call, discovery
included, sends ``Authorization: Bearer <JWT>`` signed with the client's private key; the header
names the key (``kid``) and may point at the client's JWK Set (``jku``); the payload carries
``iss``, ``aud`` (the URL called), ``exp``, ``iat``, ``jti`` and optionally ``sub`` and
``tenant``. b12plan accepts a call only from a configured client (``TrustedClient``), only with an
asymmetric algorithm that client is allowed (never ``none`` or a shared-secret HMAC), only with a
key from that client's configured JWK Set or an allow-listed ``jku`` (an arbitrary ``jku`` is never
fetched), and each ``jti`` once within its lifetime (``ReplayGuard``, kept in the database so all
workers share it). Times are checked against the injected clock, not the machine's.

PyJWT verifies the signature, ``iss`` and ``aud``; this module picks the key and checks the rest.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from b12plan.service.clock import Clock

ASYMMETRIC = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
"""The algorithms a client may be allowed. ``none`` and HS* (shared secrets) never are: the
spec forbids both, and an HMAC "verified" with a public key proves nothing."""
DEFAULT_ALGORITHMS = ("ES384", "RS384")
"""The spec's recommendation, and what a client is allowed unless its entry says otherwise."""
KEY_TYPES = {"ES": "EC", "RS": "RSA", "PS": "RSA"}
MAX_TOKEN_CHARS = 16 * 1024
MAX_JTI_CHARS = 255
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class ClientRejected(Exception):
    """The call is not from a trusted CDS client; the message says why (it goes in the 401)."""


class TrustConfigError(ValueError):
    """The trusted-clients file cannot be used; the message names the entry and field."""


def https_or_loopback(url: str) -> str:
    """An https URL, or http on a loopback address (a JWK Set served on this machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise ValueError(f"must be an https URL (http only on a loopback address): {url!r}")


class TrustedClient(BaseModel):
    """One CDS client (an EHR) allowed to call b12plan's CDS services, as registered.

    ``jwks`` (an inline JWK Set) or ``jwks_url`` gives its public keys; ``jku`` lists the JWK Set
    URLs its tokens may name in their header. ``sub``/``tenant``, when given, restrict which
    subjects and organisations of that issuer are accepted. ``clinic`` names the b12plan clinic
    whose stored records the client may fall back on (CDS Hooks record source 3); without it the
    client sees only what it sends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, max_length=300)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku: tuple[str, ...] = ()
    sub: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    clinic: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("jwks_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else https_or_loopback(value)

    @field_validator("jku")
    @classmethod
    def _jku(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(https_or_loopback(v) for v in value)

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [a for a in value if a not in ASYMMETRIC]
        if refused or not value:
            raise ValueError(
                f"only asymmetric algorithms ({', '.join(sorted(ASYMMETRIC))}) may be allowed;"
                f" refused: {refused or 'an empty list'}"
            )
        return value

    @field_validator("jwks")
    @classmethod
    def _inline(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        keys = value.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            raise ValueError("a JWK Set needs a non-empty 'keys' list of JWKs")
        if any("d" in k or "k" in k for k in keys):
            raise ValueError("holds private or secret key material: give only public keys")
        return value

    @model_validator(mode="after")
    def _some_key(self) -> TrustedClient:
        if self.jwks is None and self.jwks_url is None and not self.jku:
            raise ValueError("give the client's keys: jwks, jwks_url or jku")
        return self

    @property
    def label(self) -> str:
        """How the client is named in the audit log."""
        return f"cds-client:{self.name or self.iss}"


class _ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client: tuple[TrustedClient, ...] = ()


def parse_clients(data: object, *, origin: str) -> tuple[TrustedClient, ...]:
    """The clients of a parsed file (``{"client": [...]}``); ``TrustConfigError`` names a field."""
    try:
        clients = _ClientsFile.model_validate(data).client
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TrustConfigError(f"{origin}: {where}: {first['msg']}") from None
    seen: set[str] = set()
    for n, c in enumerate(clients):
        if c.iss in seen:
            raise TrustConfigError(f"{origin}: client.{n}.iss: {c.iss!r} is listed twice")
        seen.add(c.iss)
    return clients


def load_clients(path: Path) -> tuple[TrustedClient, ...]:
    """The trusted clients from a TOML or JSON file (by its suffix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TrustConfigError(f"{path}: {exc}") from None
    return parse_clients(data, origin=str(path))


@dataclass(frozen=True)
class VerifiedClient:
    """A call whose JWT checked out: which client, and the claims worth recording."""

    client: TrustedClient
    subject: str | None
    tenant: str | None
    jti: str
    expires_at: dt.datetime


class ReplayGuard(Protocol):
    def first_use(self, issuer: str, jti: str, expires_at: dt.datetime) -> bool:
        """Remember ``jti`` of ``issuer`` until ``expires_at``; False if it was seen before."""
        ...


class JwksFetcher:
    """JWK Sets fetched over HTTP(S): a timeout, a size limit, no redirects, cached for ``ttl``.

    A token naming an unknown ``kid`` forces a refetch (the client rotated its keys), but at most
    once every ``min_refresh`` per URL, so unknown kids cannot make b12plan hammer the client's
    server.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: dt.timedelta = dt.timedelta(minutes=5),
        min_refresh: dt.timedelta = dt.timedelta(seconds=30),
        timeout: float = 5.0,
        max_bytes: int = 64 * 1024,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.transport = transport
        self._cache: dict[str, tuple[dt.datetime, list[dict[str, Any]]]] = {}
        self._forced: dict[str, dt.datetime] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def keys(self, url: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The keys at ``url``: cached for ``ttl``; ``refresh`` refetches unless the last
        forced refetch of this URL was less than ``min_refresh`` ago."""
        with self._lock:
            lock = self._locks.setdefault(url, threading.Lock())
        with lock:  # one fetch per URL at a time; a slow client's server delays only its calls
            now = self.clock.now()
            cached = self._cache.get(url)
            if cached is not None and not refresh and now - cached[0] < self.ttl:
                return cached[1]
            last_forced = self._forced.get(url)
            if cached is not None and refresh:
                if last_forced is not None and now - last_forced < self.min_refresh:
                    return cached[1]
                self._forced[url] = now
            keys = self._fetch(url)
            self._cache[url] = (now, keys)
            return keys

    def _fetch(self, url: str) -> list[dict[str, Any]]:
        try:
            with (
                httpx.Client(
                    timeout=self.timeout, follow_redirects=False, transport=self.transport
                ) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise ClientRejected(
                        f"the JWK Set at {url} answered HTTP {response.status_code}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise ClientRejected(
                            f"the JWK Set at {url} is larger than {self.max_bytes} bytes"
                        )
        except httpx.HTTPError as exc:
            raise ClientRejected(f"the JWK Set at {url} could not be fetched: {exc}") from None
        try:
            document = json.loads(bytes(body))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ClientRejected(f"the JWK Set at {url} is not JSON") from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ClientRejected(f"the JWK Set at {url} has no 'keys' list")
        return [k for k in keys if isinstance(k, dict)]


class ClientTrust:
    """Verifies a CDS client's JWT for the URL it called (``verify``)."""

    def __init__(
        self,
        clients: Iterable[TrustedClient],
        *,
        clock: Clock,
        replay: ReplayGuard,
        jwks: JwksFetcher | None = None,
        clock_skew: dt.timedelta = dt.timedelta(seconds=60),
        max_lifetime: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        self.clients: Mapping[str, TrustedClient] = {c.iss: c for c in clients}
        self.clock = clock
        self.replay = replay
        self.jwks = jwks or JwksFetcher(clock)
        self.skew = clock_skew.total_seconds()
        self.max_lifetime = max_lifetime.total_seconds()

    def verify(self, token: str, audience: str) -> VerifiedClient:
        """The client a valid token stands for; ``ClientRejected`` saying why otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise ClientRejected(f"the JWT is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ClientRejected("the bearer token is not a readable JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC:
            raise ClientRejected(
                f"alg {alg!r} is not accepted: CDS clients sign with ES384 or RS384"
                " (never 'none' or a shared-secret HMAC)"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ClientRejected("the JWT header has no kid")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise ClientRejected(f"the JWT header's typ must be 'JWT', not {typ!r}")
        iss = unverified.get("iss")
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise ClientRejected(f"iss {iss!r} is not a trusted CDS client of this service")
        if alg not in client.algorithms:
            raise ClientRejected(
                f"alg {alg} is not allowed for {client.iss}; allowed: {list(client.algorithms)}"
            )
        key = self._key(client, header, kid, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=client.iss,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise ClientRejected("the JWT signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise ClientRejected(f"the JWT has no {exc.claim} claim") from None
        except jwt.InvalidAudienceError:
            raise ClientRejected(f"aud must be the URL called: {audience}") from None
        except jwt.PyJWTError as exc:
            raise ClientRejected(f"the JWT is not valid: {exc}") from None
        return self._claims(client, claims)

    def _claims(self, client: TrustedClient, claims: Mapping[str, Any]) -> VerifiedClient:
        now = self.clock.now().timestamp()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
        for name, value in (("exp", exp), ("iat", iat), ("nbf", nbf)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ClientRejected(f"the JWT's {name} must be a number of seconds")
        if exp <= now - self.skew:
            raise ClientRejected("the JWT has expired (exp)")
        if iat > now + self.skew:
            raise ClientRejected("the JWT was issued in the future (iat)")
        if nbf is not None and nbf > now + self.skew:
            raise ClientRejected("the JWT is not valid yet (nbf)")
        if exp > now + self.max_lifetime + self.skew:
            raise ClientRejected(
                f"the JWT lives too long: exp may be at most {int(self.max_lifetime)} s ahead"
            )
        sub, tenant, jti = claims.get("sub"), claims.get("tenant"), claims["jti"]
        if client.sub and sub not in client.sub:
            raise ClientRejected(f"sub {sub!r} is not allowed for {client.iss}")
        if client.tenant and tenant not in client.tenant:
            raise ClientRejected(f"tenant {tenant!r} is not allowed for {client.iss}")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise ClientRejected(f"jti must be a string of 1 to {MAX_JTI_CHARS} characters")
        expires_at = dt.datetime.fromtimestamp(min(exp + self.skew, 2**33), tz=dt.UTC)
        if not self.replay.first_use(client.iss, jti, expires_at):
            raise ClientRejected("this JWT was already used (jti): sign a new one for each call")
        return VerifiedClient(
            client=client,
            subject=sub if isinstance(sub, str) else None,
            tenant=tenant if isinstance(tenant, str) else None,
            jti=jti,
            expires_at=expires_at,
        )

    def _key(self, client: TrustedClient, header: Mapping[str, Any], kid: str, alg: str) -> Any:
        """The client's public key named by ``kid``, from an allow-listed JWK Set only."""
        jku = header.get("jku")
        url: str | None
        if jku is not None:
            if not isinstance(jku, str) or (jku not in client.jku and jku != client.jwks_url):
                raise ClientRejected(f"jku {jku!r} is not on the allow-list of {client.iss}")
            url = jku
        else:
            url = None if client.jwks is not None else client.jwks_url
        if url is None and client.jwks is None:
            raise ClientRejected(f"the JWT names no jku and {client.iss} has no configured JWK Set")
        keys = self.jwks.keys(url) if url is not None else _key_list(client.jwks)
        found = [k for k in keys if k.get("kid") == kid]
        if not found and url is not None:
            found = [k for k in self.jwks.keys(url, refresh=True) if k.get("kid") == kid]
        if len(found) != 1:
            problem = "no key" if not found else "more than one key"
            raise ClientRejected(f"{problem} with kid {kid!r} in the JWK Set of {client.iss}")
        jwk = found[0]
        if jwk.get("kty") != KEY_TYPES[alg[:2]] or jwk.get("alg", alg) != alg:
            raise ClientRejected(f"the key {kid!r} is not a {KEY_TYPES[alg[:2]]} key for {alg}")
        if jwk.get("use", "sig") != "sig":
            raise ClientRejected(f"the key {kid!r} is not a signing key (use={jwk.get('use')!r})")
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise ClientRejected(f"the key {kid!r} cannot be used: {exc}") from None


def _key_list(jwks: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    keys = (jwks or {}).get("keys", [])
    return [k for k in keys if isinstance(k, dict)]


def looks_like_jwt(token: str) -> bool:
    """A compact JWS (three dot-separated parts). b12plan's own tokens contain no dot."""
    return token.count(".") == 2


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if that is what it is."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def called_url(public_base_url: str | None, url: str, path: str) -> str:
    """The URL the client called, as ``aud`` must name it.

    With a configured public base URL (the address EHRs are given), that base plus the path: a
    proxy in front of b12plan changes the host and scheme the app sees, and a client-sent Host
    header must not decide what ``aud`` is accepted. Without one, the request's own URL.
    """
    if public_base_url:
        return public_base_url.rstrip("/") + path
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


__all__ = [
    "ClientRejected",
    "ClientTrust",
    "JwksFetcher",
    "ReplayGuard",
    "TrustConfigError",
    "TrustedClient",
    "VerifiedClient",
    "bearer_token",
    "called_url",
    "https_or_loopback",
    "load_clients",
    "looks_like_jwt",
    "parse_clients",
]
