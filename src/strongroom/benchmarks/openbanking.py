"""`strongroom bench openbanking`: tokens issued and account-information reads per second, each
request with its own DPoP proof, against the plain ledger read in the same run.

`strongroom serve --workers 2` runs on a fresh SQLite file (WAL, synchronous=FULL) with
STRONGROOM_PUBLIC_BASE_URL its own loopback address, as `bench http` runs it (the same server
processes, load generator and CPU accounting: benchmarks/http.py, benchmarks/loadgen.py). Before
it starts, a setup process (`setup_main`, the server's settings) makes on the same database,
through the services `serve` wires: a tenant with an API key (ledger:read), a customer with
ACCOUNTS_PER_CONSENT GBP accounts holding money, a TPP registered with an ES256 key, and an
account access consent (ReadAccountsBasic, ReadBalances) pushed (PAR), authorised by the
customer on those accounts and exchanged for a DPoP-bound access token (code and PKCE), as the
consent page and the TPP would do it. Then, over loopback with concurrent keep-alive
connections:

- reference: `GET /v1/accounts/{id}` with the API key, over the consent's accounts in turn:
  the plain read of the same rows, through the same server; measured before and after
  ais_read, and the mean of the two taken (the machine's other load moves both alike).
- ais_read: `GET /ob/bench/open-banking/v4.0/aisp/accounts/{AccountId}` over the same accounts,
  `Authorization: DPoP <token>` and a `DPoP` proof of its own each (ES256, a new `jti`, `iat`,
  `htm`, `htu` and `ath`): the server verifies the proof, reads the token, remembers the jti in
  the replay store every worker shares, checks the consent and its permission, then reads.
- token: `POST /oauth2/token`, `client_credentials` (scope accounts), each with its own
  private_key_jwt client assertion and its own DPoP proof (two ES256 signatures verified, the
  client looked up, both jtis remembered and the token stored in one durable transaction).

What is measured is the server: the proofs and assertions are signed before the clock starts
(a client signs one per request too, but the load generator's signing would otherwise be
measured on the same two cores), as many as a short probe run says the duration needs (at most
PREGENERATED_MAX). A run that uses them all before its duration ends early, its rate taken over
the time it ran. Every proof is at most DPOP_PROOF_MAX_AGE_S old when sent: they are signed
again for each measurement. Each ratio is the row's requests per second over the reference's.

`--smoke`: a moment of each with a few connections (seconds in all), the same code, rows and
fields; figures that mean nothing.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jws
from joserfc.jwk import ECKey

from strongroom.benchmarks import http as bench_http
from strongroom.benchmarks import loadgen
from strongroom.benchmarks.common import fsync_rate, median_ms, p99
from strongroom.openbanking.authz.model import DPOP_PROOF_MAX_AGE_S

HOST: Final = bench_http.HOST
WORKERS: Final = bench_http.WORKERS
TENANT: Final = "bench"
ACTOR: Final = "bench"
ACCOUNTS_PER_CONSENT: Final = 4
PERMISSIONS: Final = ("ReadAccountsBasic", "ReadBalances")
REDIRECT_URI: Final = "https://tpp.bench.example/callback"
ALG: Final = "ES256"
# Requests signed before one measurement: at about 800 bytes each, 100,000 are 80 MB, copied
# to the load generator.
PREGENERATED_MAX: Final = 100_000
# The reference's requests (the same few, sent again and again) bound its run only far past
# what two workers answer in a measurement.
REFERENCE_REQUESTS_MAX: Final = 1_000_000
# The probe that sizes a measurement's requests: this many, for at most PROBE_S.
PROBE_REQUESTS: Final = 600
PROBE_S: Final = 1.0
# Requests signed for a measurement: its expected count times this, plus one a connection.
PREGENERATED_MARGIN: Final = 3.0
# A proof is refused once DPOP_PROOF_MAX_AGE_S old: the last one must be sent this long
# before that, the load generator's start included.
PROOF_SLACK_S: Final = 15.0
SETUP_S_MAX: Final = 300.0
# A token issued in the setup outlives every measurement (the server's setting, 10 to 3,600 s).
ACCESS_TOKEN_LIFETIME_S: Final = 3_600
AIS_TARGET_RATIO: Final = 0.5

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    warmup_s: float
    duration_s: float
    connections: int
    token_connections: int
    loadgen_processes: int
    requests_max: int  # signed requests per measurement, whatever the probe says
    balance_attempts: int
    probe: bool  # size each measurement by a probe run (else: requests_max requests)
    reference_requests_max: int = REFERENCE_REQUESTS_MAX

    def __post_init__(self) -> None:
        assert self.warmup_s >= 0
        assert self.duration_s > 0
        # Every proof of a measurement is sent within its max age (60 s) of its signing.
        assert self.warmup_s + self.duration_s + PROOF_SLACK_S < DPOP_PROOF_MAX_AGE_S
        assert 1 <= self.token_connections <= self.connections <= loadgen.CONNECTIONS_MAX
        assert 1 <= self.loadgen_processes <= self.token_connections
        assert 1 <= self.requests_max <= PREGENERATED_MAX
        assert 1 <= self.reference_requests_max <= loadgen.REQUESTS_MAX
        assert 1 <= self.balance_attempts <= bench_http.BALANCE_ATTEMPTS_MAX

    @classmethod
    def full(cls) -> Plan:
        return cls(2.0, 15.0, 32, 16, 1, PREGENERATED_MAX, 3, probe=True)

    @classmethod
    def quick(cls) -> Plan:
        return cls(1.0, 4.0, 32, 16, 1, PREGENERATED_MAX, 2, probe=True)

    @classmethod
    def smoke(cls) -> Plan:
        return cls(0.0, 1.0, 4, 2, 1, 200, 1, probe=False, reference_requests_max=300)

    def for_http(self, connections: int) -> bench_http.Plan:
        """The plan benchmarks/http.py measures with (its own fields, ours where they count)."""
        return bench_http.Plan(
            warmup_s=self.warmup_s,
            duration_s=self.duration_s,
            connections=connections,
            batch_connections=connections,
            loadgen_processes=self.loadgen_processes,
            requests_max=self.reference_requests_max,
            batch_requests_max=self.requests_max,
            balance_attempts=self.balance_attempts,
        )


@dataclass
class ObRow:
    scenario: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    reference_per_s: float
    ratio: float  # requests/s over the reference's
    requests: int
    errors: int
    pregenerated: int  # requests signed for the measurement (its bound in requests)
    target: str
    meets_target: bool | None
    server_cpu_ms_per_request: float
    worker_cpu_shares: list[float]
    loadgen_cpu_ms_per_request: float
    other_load_cores: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("requests_per_s", "reference_per_s"):
            out[key] = round(out[key], 1)
        for key in ("p50_ms", "p99_ms"):
            out[key] = round(out[key], 3)
        out["ratio"] = round(out["ratio"], 4)
        for key in ("server_cpu_ms_per_request", "loadgen_cpu_ms_per_request"):
            out[key] = round(out[key], 4)
        out["worker_cpu_shares"] = [round(x, 3) for x in out["worker_cpu_shares"]]
        out["other_load_cores"] = round(out["other_load_cores"], 2)
        return out


# -- signing (the client's side) -------------------------------------------------------------


def _registry() -> jws.JWSRegistry:
    from strongroom.openbanking.jose import registry

    return registry()


class Signer:
    """A client's two keys (ES256): the TPP's signing key (client assertions) and its DPoP key."""

    def __init__(self, client_key: ECKey, dpop_key: ECKey) -> None:
        self.client_key = client_key
        self.dpop_key = dpop_key
        self.registry = _registry()
        self.dpop_header = {
            "typ": "dpop+jwt",
            "alg": ALG,
            "jwk": dpop_key.as_dict(private=False),
        }

    @classmethod
    def new(cls) -> Signer:
        return cls(ECKey.generate_key("P-256"), ECKey.generate_key("P-256"))

    def private_jwks(self) -> dict[str, Any]:
        return {
            "client": self.client_key.as_dict(private=True),
            "dpop": self.dpop_key.as_dict(private=True),
        }

    @classmethod
    def from_private_jwks(cls, jwks: dict[str, Any]) -> Signer:
        return cls(ECKey.import_key(jwks["client"]), ECKey.import_key(jwks["dpop"]))

    def public_client_jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.client_key.as_dict(private=False), "kid": "k1", "use": "sig"}]}

    def _sign(self, header: dict[str, Any], claims: dict[str, Any], key: ECKey) -> str:
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, key, registry=self.registry)

    def proof(self, method: str, url: str, iat_s: int, access_token: str | None = None) -> str:
        from strongroom.openbanking.dpop import access_token_hash

        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": iat_s,
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        return self._sign(self.dpop_header, claims, self.dpop_key)

    def client_auth(self, client_id: str, aud: str, iat_s: int) -> dict[str, str]:
        """The form members of private_key_jwt client authentication."""
        from strongroom.openbanking.clientauth import CLIENT_ASSERTION_TYPE

        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "iat": iat_s,
            "exp": iat_s + 120,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": ALG, "kid": "k1", "typ": "JWT"}
        return {
            "client_id": client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self._sign(header, claims, self.client_key),
        }


# -- the setup (a process of its own, with the server's settings) ----------------------------


def setup_main() -> None:
    """`python -c 'from strongroom.benchmarks.openbanking import setup_main; setup_main()'`:
    the client's private keys (JSON) in on stdin, the fixture (JSON) out on stdout, on the
    database of STRONGROOM_DATABASE_URL, migrated already."""
    from strongroom.runtime import create_app
    from strongroom.settings import load_settings

    spec = json.loads(sys.stdin.read())
    app = create_app(load_settings())
    try:
        fixture = _setup(app.state, Signer.from_private_jwks(spec["keys"]))
    finally:
        app.state.engine.dispose()
    sys.stdout.write(json.dumps(fixture) + "\n")
    sys.stdout.flush()


def _setup(state: Any, signer: Signer) -> dict[str, Any]:
    from strongroom.core import ids
    from strongroom.ledger.accounts import AccountSpec
    from strongroom.ledger.model import Direction, NewTransfer
    from strongroom.openbanking import pkce
    from strongroom.openbanking.consents import ConsentKind
    from strongroom.openbanking.model import Permission

    tenant = state.tenancy.create_tenant(TENANT, actor=ACTOR)
    _, api_key = state.tenancy.create_api_key(TENANT, ["ledger:read"], actor=ACTOR)
    customer = state.customers.create(tenant.id, "person", {"name": "Bench"}, actor=ACTOR)
    ledger = state.ledger
    book = ledger.create_ledger("bench books", tenant_id=tenant.id).id
    specs = [AccountSpec(book, "GBP", Direction.DEBIT, name="bank")] + [
        AccountSpec(book, "GBP", Direction.CREDIT, name=f"account {n}", customer_id=customer.id)
        for n in range(ACCOUNTS_PER_CONSENT)
    ]
    bank, *accounts = (a.id for a in ledger.create_accounts(specs))
    ledger.post_transfers(
        [NewTransfer(ids.new_id("tr"), book, bank, a, 10_000 + n) for n, a in enumerate(accounts)]
    )
    tpp = state.openbanking_clients.register(
        name="Bench TPP",
        redirect_uris=[REDIRECT_URI],
        jwks=signer.public_client_jwks(),
        scopes=["accounts"],
        actor=ACTOR,
    )
    consents = state.ob_resources.consents
    consent, _ = consents.create(
        tenant.id,
        tpp.id,
        ConsentKind.ACCOUNT_ACCESS,
        {"Permissions": list(PERMISSIONS)},
        permissions=[Permission(p) for p in PERMISSIONS],
    )
    authz = state.ob_authz
    now_s = int(time.time())
    verifier = secrets.token_urlsafe(32)
    pushed = authz.push(
        {
            **signer.client_auth(tpp.id, authz.issuer, now_s),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "accounts",
            "state": "bench",
            "code_challenge": pkce.s256_challenge(verifier),
            "code_challenge_method": pkce.S256,
            "consent_id": consent.id,
        }
    )
    # The consent page's part: the customer signs in, chooses the accounts and approves.
    pending = authz.begin(tpp.id, pushed["request_uri"])
    consents.authorise(consent.id, customer.id, accounts)
    redirect = authz.complete(pending, True, customer.id)
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    token_url = authz.endpoints.token
    tokens = authz.token(
        {
            **signer.client_auth(tpp.id, token_url, now_s),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        signer.proof("POST", token_url, now_s),
        "POST",
        token_url,
    )
    return {
        "api_key": api_key,
        "accounts": accounts,
        "client_id": tpp.id,
        "consent_id": consent.id,
        "access_token": tokens["access_token"],
        "token_url": token_url,
    }


def _run_setup(signer: Signer, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from strongroom.benchmarks.openbanking import setup_main; setup_main()",
        ],
        input=json.dumps({"keys": signer.private_jwks()}),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SETUP_S_MAX,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip()[-bench_http.LOG_TAIL_CHARS :]
        raise RuntimeError(f"the open banking setup failed: {tail}")
    fixture: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return fixture


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    port: int
    base_url: str  # STRONGROOM_PUBLIC_BASE_URL: what every htu and aud names
    fixture: dict[str, Any]

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    def plain_reads(self) -> list[bytes]:
        auth = [("Authorization", f"Bearer {self.fixture['api_key']}")]
        return [
            loadgen.encode_request("GET", f"/v1/accounts/{a}", self.host, headers=auth)
            for a in self.fixture["accounts"]
        ]

    def ais_reads(self, signer: Signer, count: int) -> list[bytes]:
        """`count` reads over the consent's accounts in turn, each with a new proof."""
        from strongroom.openbanking.ports import RESOURCE_BASE

        base = RESOURCE_BASE.format(tenant=TENANT)
        token = self.fixture["access_token"]
        accounts = self.fixture["accounts"]
        iat_s = int(time.time())
        out = []
        for n in range(count):
            path = f"{base}/aisp/accounts/{accounts[n % len(accounts)]}"
            proof = signer.proof("GET", self.base_url + path, iat_s, token)
            headers = [("Authorization", f"DPoP {token}"), ("DPoP", proof)]
            out.append(loadgen.encode_request("GET", path, self.host, headers=headers))
        return out

    def token_requests(self, signer: Signer, count: int) -> list[bytes]:
        """`count` client credentials grants, each with a new assertion and a new proof."""
        from strongroom.openbanking.authz.model import TOKEN_PATH

        url = self.fixture["token_url"]
        client_id = self.fixture["client_id"]
        iat_s = int(time.time())
        out = []
        for _ in range(count):
            form = {
                "grant_type": "client_credentials",
                "scope": "accounts",
                **signer.client_auth(client_id, url, iat_s),
            }
            headers = [
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("DPoP", signer.proof("POST", url, iat_s)),
            ]
            body = urlencode(form).encode()
            out.append(
                loadgen.encode_request("POST", TOKEN_PATH, self.host, body=body, headers=headers)
            )
        return out


def _probe_rate(port: int, requests: list[bytes], connections: int) -> float:
    """Requests a second of a short unmeasured run (it warms the server up, too)."""
    spec = loadgen.LoadSpec(
        host=HOST,
        port=port,
        requests=tuple(requests),
        connections=min(connections, len(requests)),
        requests_max=len(requests),
        duration_s=PROBE_S,
    )
    result = loadgen.run(spec)
    if result.failed or result.timed_out:
        samples = "; ".join(result.error_samples)
        raise RuntimeError(f"the probe run failed: {result.failed} errors: {samples}")
    return result.per_s


def _measure(
    scenario: str,
    proc_pid: int,
    port: int,
    make: Callable[[int], list[bytes]],
    connections: int,
    plan: Plan,
    progress: Progress,
    *,
    count_max: int,
    probe: bool,
) -> tuple[bench_http.Measured, int]:
    """A measurement of at most `count_max` requests made by `make(count)` (signed afresh for
    each attempt: a proof is used once, and only within its max age), sized by a probe run
    with `probe`; again with new connections while one worker did most of the work
    (benchmarks/http.py `_measure_balanced`)."""
    http_plan = plan.for_http(connections)
    count = count_max
    if probe:
        rate = _probe_rate(port, make(PROBE_REQUESTS), connections)
        expected = rate * (plan.warmup_s + plan.duration_s) * PREGENERATED_MARGIN
        count = max(connections, min(count_max, math.ceil(expected) + connections))
        progress(f"  probe: {rate:,.0f} req/s; {count:,} requests signed for the measurement")
    for attempt in range(1, plan.balance_attempts + 1):
        signed_at = time.monotonic()
        requests = make(count)
        signing_s = time.monotonic() - signed_at
        if signing_s + plan.warmup_s + plan.duration_s + PROOF_SLACK_S > DPOP_PROOF_MAX_AGE_S:
            raise RuntimeError(
                f"signing {count:,} requests took {signing_s:.1f} s: the last would be sent "
                "past the proofs' max age"
            )
        measured = bench_http._measure(proc_pid, port, requests, connections, count, http_plan)
        shares = measured.worker_cpu_shares
        if (
            connections < bench_http.BALANCE_CONNECTIONS_MIN
            or not shares
            or max(shares) <= bench_http.BALANCE_SHARE_MAX
        ):
            break
        split = "/".join(f"{100 * x:.0f}" for x in shares)
        if attempt < plan.balance_attempts:
            progress(f"  {scenario}: workers lopsided ({split}% of the CPU): again")
        else:
            progress(f"  {scenario}: workers still lopsided ({split}%) after {attempt}: kept")
    return measured, count


def _row(
    scenario: str,
    measured: bench_http.Measured,
    pregenerated: int,
    reference_per_s: float,
    note: str,
) -> ObRow:
    result = measured.result
    rate = result.per_s
    ratio = rate / reference_per_s if reference_per_s else 0.0
    target, met = "", None
    if scenario == "ais_read":
        target = f">= {AIS_TARGET_RATIO:g} of the plain read"
        met = ratio >= AIS_TARGET_RATIO
    errors = result.failed + result.timed_out
    if errors:
        note = f"{note}; ERRORS: {errors}"
        met = False if met is not None else None
    if result.completed + result.warmup_completed >= pregenerated:
        note = f"{note}; every signed request was used: the run ended early"
    return ObRow(
        scenario=scenario,
        requests_per_s=rate,
        p50_ms=median_ms(result.latencies_s),
        p99_ms=p99(result.latencies_s),
        reference_per_s=reference_per_s,
        ratio=ratio,
        requests=result.completed,
        errors=errors,
        pregenerated=pregenerated,
        target=target,
        meets_target=met,
        server_cpu_ms_per_request=measured.server_cpu_ms_per_request,
        worker_cpu_shares=measured.worker_cpu_shares,
        loadgen_cpu_ms_per_request=measured.loadgen_cpu_ms_per_request,
        other_load_cores=measured.other_load_cores,
        note=note,
    )


def _server_env(database_url: str, base_url: str) -> dict[str, str]:
    env = bench_http._server_env(database_url)
    env["STRONGROOM_PUBLIC_BASE_URL"] = base_url
    env["STRONGROOM_OB_ACCESS_TOKEN_LIFETIME_S"] = str(ACCESS_TOKEN_LIFETIME_S)
    # The /oauth2 routes' limits per client and address: never refusing a benchmark request.
    env["STRONGROOM_OAUTH_RATE_LIMIT_PER_S"] = str(bench_http.RATE_LIMIT_PER_S)
    env["STRONGROOM_OAUTH_RATE_LIMIT_BURST"] = str(bench_http.RATE_LIMIT_BURST)
    return env


def run(*, quick: bool, progress: Progress, smoke: bool = False) -> dict[str, Any]:
    assert not (quick and smoke), "--quick and --smoke exclude each other"
    plan = Plan.smoke() if smoke else Plan.quick() if quick else Plan.full()
    started = time.monotonic()
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "workers": WORKERS,
        "database": "sqlite (WAL, synchronous=FULL)",
        "alg": ALG,
        "accounts_per_consent": ACCOUNTS_PER_CONSENT,
        "connections": plan.connections,
        "token_connections": plan.token_connections,
        "loadgen_processes": plan.loadgen_processes,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    rows: list[ObRow] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-ob-") as tmp:
        directory = Path(tmp)
        info["fsync_per_s"] = round(fsync_rate(directory, seconds=0.5), 1)
        progress(f"disk: {info['fsync_per_s']:,.0f} fsyncs/s (4 KiB write + fsync, in {tmp})")
        port = bench_http._free_port()
        base_url = f"http://{HOST}:{port}"
        database_url = f"sqlite:///{directory / 'strongroom.db'}"
        env = _server_env(database_url, base_url)
        progress(f"strongroom: {database_url}, db upgrade, tenant, TPP, consent, token ...")
        bench_http._cli_ok(bench_http._strongroom("db", "upgrade"), env, directory)
        signer = Signer.new()
        fixture = _run_setup(signer, env, directory)
        target = Target(port, base_url, fixture)
        info["consent_id"] = fixture["consent_id"]
        progress(
            f"load: {plan.connections} keep-alive connections ({plan.token_connections} for "
            f"tokens), {plan.warmup_s:g} s warm-up + {plan.duration_s:g} s a scenario, on "
            f"{os.cpu_count()} CPUs shared with the server's {WORKERS} workers"
        )
        serve_args = bench_http._strongroom(
            "serve", "--workers", str(WORKERS), "--host", HOST, "--port", str(port)
        )
        log_path = directory / "strongroom.log"
        with bench_http._server(serve_args, env, log_path, f"{base_url}/readyz") as proc:
            plain = target.plain_reads()

            def reference(when: str) -> bench_http.Measured:
                progress(f"reference ({when}): GET /v1/accounts/{{id}} (API key) ...")
                ref, _ = _measure(
                    "reference",
                    proc.pid,
                    port,
                    lambda count: plain,
                    plan.connections,
                    plan,
                    progress,
                    count_max=plan.reference_requests_max,
                    probe=False,
                )
                progress(f"reference:       {ref.describe()}")
                return ref

            def measure(
                scenario: str, make: Callable[[int], list[bytes]], connections: int
            ) -> tuple[bench_http.Measured, int]:
                progress(f"{scenario} ...")
                measured, signed = _measure(
                    scenario,
                    proc.pid,
                    port,
                    make,
                    connections,
                    plan,
                    progress,
                    count_max=plan.requests_max,
                    probe=plan.probe,
                )
                progress(f"{scenario:<16} {measured.describe()}")
                return measured, signed

            # The reference brackets the read: measured before and after it, the mean taken,
            # so that a machine whose other load changes meanwhile moves both alike.
            before = reference("before")
            ais = measure(
                "ais_read", lambda count: target.ais_reads(signer, count), plan.connections
            )
            after = reference("after")
            token = measure(
                "token", lambda count: target.token_requests(signer, count), plan.token_connections
            )
        refs = (before, after)
        reference_per_s = statistics.fmean(r.result.per_s for r in refs)
        latencies = [s for r in refs for s in r.result.latencies_s]
        info["reference"] = {
            "request": "GET /v1/accounts/{id} with an API key, the consent's accounts",
            "requests_per_s": round(reference_per_s, 1),
            "runs_requests_per_s": [round(r.result.per_s, 1) for r in refs],
            "p50_ms": round(median_ms(latencies), 3),
            "p99_ms": round(p99(latencies), 3),
            "requests": sum(r.result.completed for r in refs),
            "errors": sum(r.result.failed + r.result.timed_out for r in refs),
            "server_cpu_ms_per_request": round(
                statistics.fmean(r.server_cpu_ms_per_request for r in refs), 4
            ),
            "worker_cpu_shares": [[round(x, 3) for x in r.worker_cpu_shares] for r in refs],
            "loadgen_cpu_ms_per_request": round(
                statistics.fmean(r.loadgen_cpu_ms_per_request for r in refs), 4
            ),
            "other_load_cores": round(statistics.fmean(r.other_load_cores for r in refs), 2),
        }
        progress(
            f"reference: {reference_per_s:,.0f} req/s (the mean of "
            f"{before.result.per_s:,.0f} before the read and {after.result.per_s:,.0f} after)"
        )
        errors: int = info["reference"]["errors"]
        for scenario, (measured, signed), note in (
            ("ais_read", ais, "GET /aisp/accounts/{AccountId}, a new DPoP proof (ES256) each"),
            (
                "token",
                token,
                "POST /oauth2/token, client_credentials, private_key_jwt + DPoP (ES256)",
            ),
        ):
            row = _row(scenario, measured, signed, reference_per_s, note)
            progress(
                f"{scenario}: ratio to reference {row.ratio:.3f}"
                + (
                    f"; target {row.target}: {'met' if row.meets_target else 'MISSED'}"
                    if row.target
                    else ""
                )
            )
            rows.append(row)
        errors += sum(r.errors for r in rows)
    info["errors"] = errors
    if errors:
        progress(f"THE RUN HAD ERRORS ({errors}): its figures do not stand for the server.")
    progress(f"done in {time.monotonic() - started:.0f} s")
    return {"info": info, "results": [r.to_dict() for r in rows]}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | requests/s | p50 ms | p99 ms | reference /s | ratio | server CPU ms/req "
        "| target | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in report["results"]:
        target = ""
        if r["target"]:
            target = f"{r['target']}: {'met' if r['meets_target'] else 'MISSED'}"
        lines.append(
            f"| {r['scenario']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['reference_per_s']:,.0f} | {r['ratio']:.3f} "
            f"| {r['server_cpu_ms_per_request']:.3f} | {target} | {r['errors']} |"
        )
    ref = report["info"]["reference"]
    lines.append(
        f"| reference (GET /v1/accounts/{{id}}, API key) | {ref['requests_per_s']:,.0f} "
        f"| {ref['p50_ms']:.2f} | {ref['p99_ms']:.2f} | | 1.000 "
        f"| {ref['server_cpu_ms_per_request']:.3f} | | {ref['errors']} |"
    )
    return "\n".join(lines)
