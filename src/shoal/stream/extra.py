"""What the stream commands need beyond shoal's base install: the ``stream`` extra.

``pip install 'shoal[stream]'`` brings the web server (FastAPI, uvicorn), WebSocket
clients (websockets) and the config folder's location (platformdirs).  A stream command
run without them says so in one line, before it starts anything.  ``--local`` needs none
of them: it tries a module on the base install.
"""

from __future__ import annotations

import importlib

from shoal.errors import ConfigurationError

SERVER = ("fastapi", "uvicorn", "websockets")   # a coordinator: stream, stream-server, relays
CLIENT = ("websockets",)                        # shoal volunteer, shoal stream --server


class MissingExtra(ConfigurationError):
    """A stream command needs a package of the ``stream`` extra that is not installed."""


def require(what: str, modules: tuple[str, ...]) -> None:
    """MissingExtra, naming the extra to install, unless every module imports."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:   # installed, but something it needs is not
                raise MissingExtra(f"{what}: {name} is installed but cannot be imported "
                                   f"({exc}): pip install 'shoal[stream]'") from None
            missing.append(name)
        except ImportError as exc:
            raise MissingExtra(f"{what}: {name} is installed but cannot be imported "
                               f"({exc})") from None
    if missing:
        raise MissingExtra(f"{what} needs the `stream` extra ({', '.join(missing)} "
                           "missing): pip install 'shoal[stream]'")
