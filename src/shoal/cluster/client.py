"""A typed client of the master's REST API (docs/contracts/cluster-rest.md).

::

    from shoal.cluster.client import ClusterClient, ClientSettings

    with ClusterClient.from_settings(ClientSettings.resolve()) as client:
        pool = client.submit(["hostname"], workers=["pi-1", "pi-2"])
        for event in client.follow_pool(pool.id):
            ...

Where the master is and which token to use come, first found wins, from the
arguments (the CLI's ``--master``/``--token``), the environment
(``SHOAL_MASTER``, ``SHOAL_TOKEN``, ``SHOAL_CA_CERT``) or ``client.toml`` in
shoal's config folder (``SHOAL_CONFIG_DIR`` overrides it)::

    [client]
    master = "https://lab-master:7450"
    token = "..."             # the file must then be readable by its owner only
    ca_cert = "/path/ca.pem"  # a master with a self-signed certificate

Every error the master answers becomes a :mod:`~shoal.cluster.client_errors`
exception carrying the master's message.
"""

from __future__ import annotations

import argparse
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shoal.cluster.client_errors import (
    ClientConfigurationError,
    MasterProtocolError,
    MasterUnreachableError,
    error_from_response,
)
from shoal.cluster.client_models import (
    Job,
    JobEnded,
    OutputChunk,
    Pool,
    PoolPage,
    Worker,
    parse,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

API = "/api/v1"
CONFIG_FILE = "client.toml"
ENV_MASTER, ENV_TOKEN, ENV_CA_CERT = "SHOAL_MASTER", "SHOAL_TOKEN", "SHOAL_CA_CERT"
# How long a followed stream keeps trying to reconnect to a master that went away
# (a restart takes a few seconds; the master keeps every job's output).
RECONNECT_FOR_S = 60.0


def config_path() -> Path:
    """Where ``client.toml`` is: ``$SHOAL_CONFIG_DIR`` or the user's config folder."""
    override = os.environ.get("SHOAL_CONFIG_DIR")
    if override:
        return Path(override) / CONFIG_FILE
    import platformdirs  # only needed without the override

    return Path(platformdirs.user_config_dir("shoal")) / CONFIG_FILE


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClientConfigurationError(f"cannot read {path}: {exc}") from exc
    section = data.get("client", {})
    if not isinstance(section, dict):
        raise ClientConfigurationError(f"{path}: [client] must be a table")
    if section.get("token") and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        # A token is a password: refuse it where others could have read it.
        raise ClientConfigurationError(
            f"{path} holds a token but others may read it: run `chmod 600 {path}`")
    return section


def normalize_master_url(text: str) -> str:
    """``host:port`` -> ``http://host:port``; no trailing slash; a clear error if bad."""
    text = text.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ClientConfigurationError(f"bad master URL {text!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ClientConfigurationError(
            f"bad master URL {text!r}: expected http(s)://HOST:PORT, e.g. http://lab-master:7450")
    return text


@dataclass(frozen=True)
class ClientSettings:
    """Where the master is, the token to show it, and the CA that signed its certificate."""

    master: str
    token: str
    ca_cert: str | None = None

    @classmethod
    def resolve(cls, master: str | None = None, token: str | None = None, *,
                env: Mapping[str, str] | None = None,
                config_file: Path | None = None) -> ClientSettings:
        """Arguments first, then the environment, then ``client.toml``."""
        env = os.environ if env is None else env
        path = config_file or config_path()
        config = _read_config(path)
        found_master = master or env.get(ENV_MASTER) or config.get("master")
        if not found_master:
            raise ClientConfigurationError(
                "no master given: pass --master URL, set SHOAL_MASTER, or put "
                f'master = "http://HOST:PORT" under [client] in {path}')
        found_token = token or env.get(ENV_TOKEN) or config.get("token")
        if not found_token:
            raise ClientConfigurationError(
                "no token given: create one on the master with `shoal master token create "
                "--scope submit`, then pass --token, set SHOAL_TOKEN, or put "
                f'token = "..." under [client] in {path} (chmod 600)')
        ca_cert = env.get(ENV_CA_CERT) or config.get("ca_cert")
        return cls(normalize_master_url(str(found_master)), str(found_token).strip(),
                   str(ca_cert) if ca_cert else None)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--master URL`` and ``--token TOKEN``, shared by every client command."""
    parser.add_argument("--master", metavar="URL",
                        help="the master, e.g. http://lab-master:7450 "
                             f"(default: ${ENV_MASTER}, else client.toml)")
    parser.add_argument("--token", metavar="TOKEN",
                        help=f"a token from `shoal master token create` (default: ${ENV_TOKEN}, "
                             "else client.toml)")


def connect(args: argparse.Namespace) -> ClusterClient:
    """A client for the master and token the parsed ``args`` (or the defaults) name."""
    return ClusterClient.from_settings(ClientSettings.resolve(args.master, args.token))


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


def parse_sse(lines: Iterator[str]) -> Iterator[ServerSentEvent]:
    """Server-Sent Events from the response's lines (the WHATWG rules we need).

    Comment lines (``:keep-alive``) are skipped; several ``data:`` lines of one
    event are joined with newlines; an event is dispatched at its blank line.
    """
    name = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(name, "\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:  # a stream cut right after its last data line
        yield ServerSentEvent(name, "\n".join(data))


FollowEvent = OutputChunk | JobEnded


class ClusterClient:
    """The REST API as methods; one HTTP connection pool, usable as a context manager."""

    def __init__(self, master: str, token: str, *, timeout: float = 15.0,
                 verify: bool | str = True, transport: httpx.BaseTransport | None = None,
                 reconnect_for: float = RECONNECT_FOR_S) -> None:
        self.master = normalize_master_url(master)
        self.reconnect_for = reconnect_for
        self._http = httpx.Client(
            base_url=self.master + API, timeout=timeout, verify=verify, transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings: ClientSettings, **kwargs: Any) -> ClusterClient:
        return cls(settings.master, settings.token, verify=settings.ca_cert or True, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json: Any = None) -> Any:
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TransportError as exc:
            raise MasterUnreachableError(self.master, _reason(exc)) from exc
        return _decode(response)

    def submit(self, command: Sequence[str], workers: Sequence[str] | None = None, *,
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               timeout: float | None = None) -> Pool:
        """Run ``command`` on the named workers (names or ids; None: all online ones)."""
        if not command:
            raise ClientConfigurationError("say which command to run, e.g. -- hostname")
        body = {"command": list(command), "workers": list(workers) if workers else None,
                "env": dict(env) if env else None, "cwd": cwd, "timeout": timeout}
        return parse(Pool, self._request("POST", "/pools", json=body))

    def pools(self, *, state: str | None = None, worker: str | None = None,
              limit: int = 50, offset: int = 0) -> PoolPage:
        """A page of pools, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        if worker:
            params["worker"] = worker
        return parse(PoolPage, self._request("GET", "/pools", params=params))

    def pool(self, pool_id: str) -> Pool:
        return parse(Pool, self._request("GET", f"/pools/{_segment(pool_id)}"))

    def kill(self, pool_id: str, workers: Sequence[str] | None = None,
             signal: int = 15) -> Pool:
        """Kill the pool's jobs on the named workers (None: all of them)."""
        body = {"workers": list(workers) if workers else None, "signal": signal}
        return parse(Pool, self._request("POST", f"/pools/{_segment(pool_id)}/kill", json=body))

    def job(self, job_id: str) -> Job:
        return parse(Job, self._request("GET", f"/jobs/{_segment(job_id)}"))

    def output(self, job_id: str) -> tuple[str, str]:
        """A job's whole (stdout, stderr) so far (asked for a piece at a time)."""
        texts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        offsets = {"offset_stdout": 0, "offset_stderr": 0}
        while True:
            data = self._request("GET", f"/jobs/{_segment(job_id)}/output", params=offsets)
            try:
                for name in texts:
                    texts[name].append(str(data[name]))
                    offsets[f"offset_{name}"] = int(data[f"offset_{name}"])
            except (KeyError, TypeError, ValueError) as exc:
                raise MasterProtocolError(f"the master's job output lacks {exc}") from exc
            if not data.get("truncated"):  # older masters send it all at once
                return "".join(texts["stdout"]), "".join(texts["stderr"])

    def workers(self, *, state: str | None = None) -> list[Worker]:
        data = self._request("GET", "/workers", params={"state": state} if state else None)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise MasterProtocolError("the master's worker list has no 'items'")
        return [parse(Worker, item) for item in data["items"]]

    def worker(self, worker: str) -> Worker:
        return parse(Worker, self._request("GET", f"/workers/{_segment(worker)}"))

    def remove_worker(self, worker: str) -> None:
        """Remove a worker that is not online (needs a token of scope admin)."""
        self._request("DELETE", f"/workers/{_segment(worker)}")

    def health(self, worker: str, *, since: str | None = None,
               resolution: str = "raw") -> list[dict[str, Any]]:
        params = {"resolution": resolution, **({"since": since} if since else {})}
        data = self._request("GET", f"/workers/{_segment(worker)}/health", params=params)
        return list(data.get("items", [])) if isinstance(data, dict) else []

    # -- streams ----------------------------------------------------------------

    def _events(self, path: str) -> Iterator[ServerSentEvent]:
        # No read timeout: a quiet job may print nothing for hours.
        timeout = httpx.Timeout(10.0, read=None)
        headers = {"Accept": "text/event-stream"}
        with self._http.stream("GET", path, timeout=timeout, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                _decode(response)
            yield from parse_sse(response.iter_lines())

    def stream(self, job_id: str) -> Iterator[FollowEvent]:
        """A job's output as it comes, then :class:`JobEnded`.

        If the master goes away (a restart) the stream reconnects for up to
        ``reconnect_for`` seconds; the master replays the output from the start,
        so what was already yielded is skipped, not repeated.
        """
        seen = {"stdout": 0, "stderr": 0}
        lost_since: float | None = None
        while True:
            to_skip = dict(seen)
            try:
                for event in self._events(f"/jobs/{_segment(job_id)}/stream"):
                    lost_since = None
                    if event.event == "end":
                        yield JobEnded(parse(Job, _json(event.data)))
                        return
                    if event.event != "output":
                        continue
                    chunk = parse(OutputChunk, {"job_id": job_id, **_json(event.data)})
                    skip = min(to_skip.get(chunk.stream, 0), len(chunk.data))
                    to_skip[chunk.stream] = to_skip.get(chunk.stream, 0) - skip
                    if skip < len(chunk.data):
                        seen[chunk.stream] = seen.get(chunk.stream, 0) + len(chunk.data) - skip
                        yield OutputChunk(job_id, chunk.stream, chunk.data[skip:])
            except httpx.TransportError as exc:
                reason = _reason(exc)
            else:
                reason = "the stream ended before the job did"
            now = time.monotonic()
            lost_since = lost_since or now
            if now - lost_since >= self.reconnect_for:
                raise MasterUnreachableError(self.master, reason)
            time.sleep(0.5)

    def follow_pool(self, pool_id: str) -> Iterator[FollowEvent]:
        """The output of every job of a pool, interleaved as it comes, each job's
        :class:`JobEnded` last; returns when every job has ended."""
        pool = self.pool(pool_id)
        events: queue.Queue[FollowEvent | BaseException | None] = queue.Queue()

        def pump(job_id: str) -> None:
            try:
                for event in self.stream(job_id):
                    events.put(event)
            except BaseException as exc:  # handed to the consumer, who raises it
                events.put(exc)
            finally:
                events.put(None)

        for job in pool.jobs:
            threading.Thread(target=pump, args=(job.id,), daemon=True,
                             name=f"follow-{job.id[:8]}").start()
        running = len(pool.jobs)
        while running:
            item = events.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item


def _segment(value: str) -> str:
    """A path segment from user input: no slashes or dots that would change the route."""
    text = value.strip()
    if not text or "/" in text or text in (".", ".."):
        raise ClientConfigurationError(f"bad id or name {value!r}")
    return text


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "certificate" in text or "ssl" in text:
            return f"TLS failed: {exc}; give the master's CA with SHOAL_CA_CERT or ca_cert"
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise MasterProtocolError(f"the master sent an event that is not JSON: {exc}") from exc


def _decode(response: httpx.Response) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_from_response(response.status_code, body)
    if body is None and response.status_code != 204:
        raise MasterProtocolError(
            f"the master answered HTTP {response.status_code} without JSON; is "
            f"{response.url} really a shoal master?")
    return body
