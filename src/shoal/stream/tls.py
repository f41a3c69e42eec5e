"""TLS for the stream face: the coordinator's certificate, and what its clients trust.

Browsers speak only WebSocket, so the channel security between machines is TLS (HTTPS and
WSS), not the beacons' own handshake.  A coordinator (``shoal stream``, ``shoal
stream-server``, a relay) serves TLS with ``--certfile``/``--keyfile``; whatever connects to
one (``shoal volunteer``, a relay's parent link, ``shoal stream --server``) trusts the system's
CAs, or the certificates in ``--cafile`` (a self-signed coordinator's own certificate).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass

from shoal.errors import ConfigurationError
from shoal.stream.errors import StreamError


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate and its key, checked readable and matching before anything starts."""

    certfile: str
    keyfile: str


def server_certificate(certfile: str | None, keyfile: str | None) -> ServerCertificate | None:
    """The checked pair, or None without TLS; one clear error for a bad or half pair."""
    if not certfile and not keyfile:
        return None
    if not certfile or not keyfile:
        raise ConfigurationError("TLS needs both --certfile and --keyfile (the certificate "
                                 "and its private key, PEM files)")
    for option, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        try:   # ssl's own error does not say which of the two files is missing
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigurationError(f"cannot read {option} {path}: "
                                     f"{(exc.strerror or str(exc)).lower()}") from None
    # Loaded here, up front, so a bad file is one line before the server starts; uvicorn
    # loads the same files again once it listens.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigurationError(f"cannot use --certfile {certfile} with --keyfile {keyfile} "
                                 f"({reason}): give a PEM certificate and the private key "
                                 "that belongs to it") from None
    return ServerCertificate(certfile, keyfile)


def client_context(url: str, cafile: str | None) -> ssl.SSLContext | None:
    """What a connection to ``url`` trusts: None for ws://, else the system's CAs or
    ``cafile``'s certificates (a self-signed coordinator's own certificate will do)."""
    if not url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot read --cafile {cafile}: {exc}") from None
        # Trust the certificates in cafile themselves, so the coordinator's own certificate
        # (self-signed or not) is enough to verify it, without its CA's.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def unreachable(what: str, url: str, exc: BaseException) -> StreamError:
    """The error for a failed connection; an unverifiable certificate says what to do."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "not trusted"
        return StreamError(f"cannot verify the certificate of {what} at {url} ({reason}); "
                           "pass --cafile FILE with its certificate (or its CA's)")
    return StreamError(f"cannot reach {what} at {url}: {exc}")


def _loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False


def network_warning(program: str, bind: str, *, secret: bool, secret_option: str,
                    certificate: ServerCertificate | None) -> str | None:
    """One warning line for a listener other machines can reach without a secret or
    without TLS (``secret_option``: the option that sets the secret it checks), else None."""
    if _loopback(bind) or (secret and certificate is not None):
        return None
    where = f"{program}: warning: listening on {bind or '0.0.0.0'}"
    tls_hint = "--certfile FILE --keyfile FILE"
    if not secret and certificate is None:
        return (f"{where} with no secret and without TLS: anyone who reaches it may join, "
                f"and everything crosses the network in clear; add {secret_option} S and "
                f"{tls_hint}, or --bind 127.0.0.1")
    if not secret:
        return (f"{where} with no secret: anyone who reaches it may join; add "
                f"{secret_option} S")
    return (f"{where} without TLS: the secret, the items and the results cross the network "
            f"in clear; add {tls_hint} (docs/streams.md, \"Across machines: TLS\")")
