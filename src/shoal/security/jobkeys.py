"""Per-job keys: authenticated, encrypted rank-to-rank links between hosts.

The launcher makes one random 32-byte :class:`JobKey` per job and hands it to
every rank over the (secure) control channel.  Two ranks then run the ``JOB``
handshake of :mod:`shoal.security.handshake` over their link: the job key is
the shared secret, the names ``"rank <src>"``/``"rank <dst>"`` and both sides'
fresh nonces are in the transcript, and HKDF gives each direction of each
link its own traffic secret.  So links never share keys or nonces, a link
reopened later gets new keys, and nobody without the job key can join,
read or alter the traffic.

A job key is a secret: never log it, and never send it over anything but an
authenticated, encrypted channel.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import ConfigurationError
from shoal.security.config import ClientConfig, HandshakeResult, ServerConfig
from shoal.security.handshake import JOB_KEY_SIZE


def _rank_name(rank: int, job_id: str) -> str:
    return f"{job_id} rank {rank}" if job_id else f"rank {rank}"


@dataclass(frozen=True)
class JobKey:
    """The secret all ranks of one job share, and how to build their links from it."""

    key: bytes = field(repr=False)
    job_id: str = ""

    def __post_init__(self) -> None:
        if len(self.key) != JOB_KEY_SIZE:
            raise ConfigurationError(f"a job key has {JOB_KEY_SIZE} bytes, not {len(self.key)}")

    @classmethod
    def generate(cls, job_id: str = "") -> JobKey:
        return cls(secrets.token_bytes(JOB_KEY_SIZE), job_id)

    def hex(self) -> str:
        """The key as text, for the control channel (a secret!)."""
        return self.key.hex()

    @classmethod
    def from_hex(cls, text: str, job_id: str = "") -> JobKey:
        try:
            return cls(bytes.fromhex(text), job_id)
        except ValueError:
            raise ConfigurationError("a job key is 64 hexadecimal digits") from None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, JobKey) and other.job_id == self.job_id
                and hmac.compare_digest(other.key, self.key))

    def __hash__(self) -> int:
        return hash((self.job_id, self.key))

    def client_config(self, rank: int, peer_rank: int, **options: Any) -> ClientConfig:
        """The settings for ``rank`` to open its link to ``peer_rank``."""
        return ClientConfig(job_key=self.key, name=_rank_name(rank, self.job_id),
                            server_name=_rank_name(peer_rank, self.job_id),
                            expected_server_name=_rank_name(peer_rank, self.job_id), **options)

    def server_config(self, rank: int, **options: Any) -> ServerConfig:
        """The settings for ``rank`` to accept links from the other ranks of the job."""
        return ServerConfig(job_key=self.key, name=_rank_name(rank, self.job_id), **options)

    def peer_rank(self, session: HandshakeResult) -> int:
        """The rank at the other end of an authenticated link."""
        prefix = f"{self.job_id} rank " if self.job_id else "rank "
        name = session.peer_name
        if not name.startswith(prefix) or not name[len(prefix):].isdigit():
            raise ConfigurationError(f"the peer {name!r} is not a rank of this job")
        return int(name[len(prefix):])
