"""Bearer tokens: 401 without or with an unknown token, 403 with too small a scope."""

from __future__ import annotations

import json

import httpx
from cluster_helpers import Master, Worker, shoal, wait_for

from shoal.cluster.db.tokens import digest


def test_every_api_endpoint_needs_a_known_token(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    for token in ("", "shoal_not-a-real-token"):
        # From an address of its own: unknown tokens count against the address they come from.
        with master.client(token, transport=_from("127.0.0.2")) as client:
            for path in ("/api/v1/pools", "/api/v1/workers", "/api/v1/jobs/x", "/metrics"):
                response = client.get(path)
                assert response.status_code == 401, (token, path)
                assert response.headers["www-authenticate"] == "Bearer"
                assert set(response.json()["error"]) == {"code", "message"}
    with master.client("") as client:
        assert client.get("/healthz").json() == {"ok": True}  # the one open endpoint


def test_scopes_nest_read_below_submit_below_admin(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    read, submit = master.new_token("read", "reader"), master.new_token("submit", "submitter")
    with master.client(read) as client:
        assert client.get("/api/v1/workers").status_code == 200
        refused = client.post("/api/v1/pools", json={"command": ["true"]})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"
    with master.client(submit) as client:
        pool = client.post("/api/v1/pools", json={"command": ["true"], "workers": ["w1"]})
        assert pool.status_code == 201 and pool.json()["submitted_by"] == "submitter"
        assert client.get(f"/api/v1/pools/{pool.json()['id']}").status_code == 200
    with master.client("") as client:  # EventSource cannot set headers: ?token= works there
        refused = client.get("/api/v1/workers", params={"token": read})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_in_url"
        assert "Authorization: Bearer" in refused.json()["error"]["message"]
        with client.stream("GET", "/api/v1/events", params={"token": read}) as events:
            assert events.status_code == 200
            assert next(events.iter_lines()) == ": connected"


def _from(address: str) -> httpx.HTTPTransport:
    return httpx.HTTPTransport(local_address=address)


def test_unknown_tokens_are_rate_limited_per_address(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    reader = master.new_token("read", "patient")
    with master.client("", transport=_from("127.0.0.3")) as guesser:
        answers = [guesser.get("/api/v1/pools", headers={"Authorization": f"Bearer guess-{i}"})
                   for i in range(13)]
        codes = [a.status_code for a in answers]  # 10 free; the 11th starts a refusal
        assert codes[:11] == [401] * 11 and codes[11:] == [429, 429], codes
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "too_many_attempts"
        assert "too many unknown tokens from 127.0.0.3" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        # While refused, the address gets nothing, even with a good token ...
        good = guesser.get("/api/v1/pools", headers={"Authorization": f"Bearer {reader}"})
        assert good.status_code == 429
    # ... and another address is not concerned.
    with master.client(reader, transport=_from("127.0.0.4")) as other:
        assert other.get("/api/v1/pools").status_code == 200


def test_tokens_made_listed_and_revoked_by_the_cli_are_stored_hashed(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    made = shoal("master", "token", "create", "--scope", "read", "--name", "short-lived",
                 env=master.env)
    assert made.returncode == 0 and "shown only now" in made.stderr, made.stderr
    secret = made.stdout.strip()
    listed = shoal("master", "token", "list", "--json", env=master.env)
    entry = next(t for t in json.loads(listed.stdout) if t["name"] == "short-lived")
    assert secret not in listed.stdout
    assert entry["scope"] == "read" and entry["last_used_at"] is None
    with master.client(secret) as client:
        assert client.get("/api/v1/pools").status_code == 200
        used = json.loads(shoal("master", "token", "list", "--json", env=master.env).stdout)
        assert next(t for t in used if t["id"] == entry["id"])["last_used_at"] is not None
        done = shoal("master", "token", "revoke", entry["id"], env=master.env)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: client.get("/api/v1/pools").status_code == 401, within=10,
                 what="the revocation taking effect")  # the master caches tokens 2 s
    database = b"".join(p.read_bytes() for p in (master.dir / "data").glob("cluster.db*"))
    assert secret.encode() not in database and digest(secret).encode() in database
    again = shoal("master", "token", "revoke", entry["id"], env=master.env)
    assert again.returncode == 1 and "no token" in again.stderr


def test_unknown_tokens_from_many_addresses_draw_on_one_overall_budget(start_master) -> None:
    # The budget refills so slowly here that a loaded machine's slowness cannot refill it
    # during the test (the default, 0.2 a second, refills one unit in 5 s).
    master = start_master(["--offline-after", "3", "--lost-after", "3", "--login-budget", "20",
                           "--login-refill", "0.0001"])
    reader = master.new_token("read", "known-user")
    with master.client(reader, transport=_from("127.0.1.1")) as known:
        assert known.get("/api/v1/pools").status_code == 200  # this address is now trusted
    codes = []
    for i in range(30):  # one guess each from 30 addresses: no address reaches its own limit
        with master.client(f"guess-{i}", transport=_from(f"127.0.2.{i + 1}")) as guesser:
            codes.append(guesser.get("/api/v1/pools").status_code)
    assert codes[0] == 401 and codes[-1] == 429, codes
    assert codes.count(401) <= 21, codes  # the overall budget (20, refilling slowly) is spent
    with master.client(reader, transport=_from("127.0.2.200")) as stranger:
        refused = stranger.get("/api/v1/pools")  # a good token from an address never seen
        assert refused.status_code == 429, refused.text
        assert "from all addresses together" in refused.json()["error"]["message"]
    with master.client(reader, transport=_from("127.0.1.1")) as known:
        assert known.get("/api/v1/pools").status_code == 200  # known users are not locked out
