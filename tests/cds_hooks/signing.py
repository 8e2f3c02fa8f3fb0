"""A CDS client's side of trust, for the tests: real key pairs, signed JWTs, and a JWK Set
served over HTTP by a real server on the loopback address (nothing leaves the machine)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

Json = dict[str, Any]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class SigningKey:
    """A fresh key pair: ``kind`` "EC" (P-384, ES384) or "RSA" (2048-bit, RS384)."""

    kind: str
    kid: str
    private: Any = None

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = (
                ec.generate_private_key(ec.SECP384R1())
                if self.kind == "EC"
                else rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )

    @property
    def alg(self) -> str:
        return "ES384" if self.kind == "EC" else "RS384"

    def public_jwk(self) -> Json:
        algorithm = ECAlgorithm if self.kind == "EC" else RSAAlgorithm
        jwk: Json = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


def jwks(*keys: SigningKey) -> Json:
    return {"keys": [k.public_jwk() for k in keys]}


@dataclass
class Ehr:
    """A CDS client: its issuer and signing key, minting one JWT per call."""

    iss: str
    key: SigningKey
    now: int
    jku: str | None = None
    sub: str | None = "b12plan-cds-client"
    tenant: str | None = None

    def token(self, aud: str | list[str], **changes: Any) -> str:
        """A JWT for ``aud``; ``changes`` override claims (``None`` removes one); header items
        go in ``header``."""
        claims: Json = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": aud,
            "iat": self.now,
            "exp": self.now + 300,
            "jti": str(uuid.uuid4()),
            "tenant": self.tenant,
        }
        header: Json = {"kid": self.key.kid, "typ": "JWT"}
        if self.jku is not None:
            header["jku"] = self.jku
        header.update(changes.pop("header", {}))
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private_key, algorithm=self.key.alg, headers=header)

    @property
    def private_key(self) -> Any:
        return self.key.private

    def headers(self, aud: str, **changes: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(aud, **changes)}"}


def unsigned(header: Json, claims: Json) -> str:
    """An ``alg: none`` token: no signature at all."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def hmac_signed(header: Json, claims: Json, secret: bytes) -> str:
    """An HS384 token keyed with ``secret`` (the classic attack: the public key as the secret)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha384).digest()
    return f"{signing_input}.{b64url(mac)}"


def with_payload(token: str, claims: Json) -> str:
    """The same header and signature over a different payload (a tampered token)."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


@dataclass
class JwksServer:
    """An HTTP server on 127.0.0.1 answering ``documents`` by path; counts the requests."""

    documents: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    base: str = ""

    def serve(self, path: str, document: Json | bytes) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = body
        return self.base + path


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            body = state.documents.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
