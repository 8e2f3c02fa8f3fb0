"""What checking a CDS client's JWT costs per call: signature, claims and the jti write.

In process, over a fresh migrated SQLite file (the replay guard's real store), with a freshly made
EC P-384 key (ES384) and RSA 2048 key (RS384) given inline, so no JWK Set fetch is timed. Each
round signs a new token (outside the timing) and verifies it once; the jti insert is timed on its
own too, since it is the part that takes the database's write lock.

    .venv/bin/python benchmarks/cds_trust.py            # 500 tokens per algorithm
    .venv/bin/python benchmarks/cds_trust.py --tokens 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from b12plan.cds_hooks.trust import ClientTrust, TrustedClient
from b12plan.service import FixedClock
from b12plan.service.cds import CdsLedger
from b12plan.store import Database, upgrade

NOW = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
AUD = "https://b12.example.org/cds-services/b12plan-patient-view"


def _ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"median {statistics.median(samples):.2f} ms, p99 {q[98]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=500)
    args = parser.parse_args()
    keys: dict[str, Any] = {
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    jwks = {
        "keys": [
            {**json.loads(ECAlgorithm.to_jwk(keys["ES384"].public_key())), "kid": "ec"},
            {**json.loads(RSAAlgorithm.to_jwk(keys["RS384"].public_key())), "kid": "rsa"},
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        clock = FixedClock(NOW)
        ledger = CdsLedger(db, clock=clock)
        client = TrustedClient(iss="https://ehr.example.org", jwks=jwks)
        trust = ClientTrust([client], clock=clock, replay=ledger)
        t = int(NOW.timestamp())
        for alg, kid in (("ES384", "ec"), ("RS384", "rsa")):
            samples = []
            for _ in range(args.tokens):
                claims = {
                    "iss": client.iss,
                    "aud": AUD,
                    "iat": t,
                    "exp": t + 300,
                    "jti": str(uuid.uuid4()),
                }
                token = jwt.encode(claims, keys[alg], algorithm=alg, headers={"kid": kid})
                start = time.perf_counter()
                trust.verify(token, AUD)
                samples.append((time.perf_counter() - start) * 1000)
            print(f"verify {alg} (signature, claims, jti write): {_ms(samples)}")
        writes = []
        for _ in range(args.tokens):
            start = time.perf_counter()
            ledger.first_use(client.iss, str(uuid.uuid4()), NOW + dt.timedelta(minutes=5))
            writes.append((time.perf_counter() - start) * 1000)
        print(f"jti write alone (SQLite, synchronous=FULL): {_ms(writes)}")
        db.dispose()


if __name__ == "__main__":
    main()
