"""Errors of the streams face, all in shoal's one tree (:mod:`shoal.errors`)."""

from __future__ import annotations

from shoal.errors import ConfigurationError, ShoalError, TransportError


class StreamError(ShoalError):
    """A stream could not run to its end."""


class ProcessorError(ConfigurationError):
    """The module cannot be imported, or it defines no processor function."""


class ProtocolError(TransportError):
    """A peer sent a message the volunteer protocol does not allow."""


class RootRefused(StreamError):
    """A stream-server refused this stream (bad secret, or busy with another one)."""
