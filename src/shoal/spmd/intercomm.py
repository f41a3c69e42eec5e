"""``MPI.Intercomm`` and dynamic process management: what shoal does not build, said exactly.

shoal makes no intercommunicator: new ranks cannot join a running job, so there is no
``Spawn``, ``Connect``/``Accept``, ``Join``, name publishing nor ``Create_intercomm``
(the README's list of unsupported MPI features).  Each of these raises
``NotImplementedError`` with that reason, which is how mpi4py reports a feature the MPI
library lacks (its tests skip on it).

What MPI defines without them is here: ``Comm.Get_parent()`` returns ``MPI_COMM_NULL``
(typed ``Intercomm``), as in every process that was not spawned, and the ``Intercomm``
class exists to be named, subclassed and compared against; its only handles are null
ones, whose calls raise ``MPI.Exception`` (``ERR_COMM``) as MPI's null handle does.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd.comm import Comm, Intracomm
from shoal.spmd.comm import no_dynamic_processes as _unsupported
from shoal.spmd.commbase import _NULL_COMM


class Intercomm(Comm):
    """mpi4py's ``Intercomm``: only null handles (see the module's docstring)."""

    __module__ = "shoal.MPI"

    @classmethod
    def _accepts(cls, record: Any) -> bool:
        return record is _NULL_COMM

    def Is_inter(self) -> bool:
        self._engine_free_check()
        return True

    def Is_intra(self) -> bool:
        self._engine_free_check()
        return False

    def Get_remote_group(self) -> Any:
        self._engine_free_check()
        raise _unsupported("Intercomm.Get_remote_group")

    def Get_remote_size(self) -> int:
        self._engine_free_check()
        raise _unsupported("Intercomm.Get_remote_size")

    @property
    def remote_group(self) -> Any:
        return self.Get_remote_group()

    @property
    def remote_size(self) -> int:
        return self.Get_remote_size()

    def Merge(self, high: bool = False) -> Intracomm:
        self._engine_free_check()
        raise _unsupported("Intercomm.Merge")


def Open_port(info: Any = None) -> str:
    raise _unsupported("Open_port")


def Close_port(port_name: str) -> None:
    raise _unsupported("Close_port")


def Publish_name(service_name: str, port_name: str, info: Any = None) -> None:
    raise _unsupported("Publish_name")


def Unpublish_name(service_name: str, port_name: str, info: Any = None) -> None:
    raise _unsupported("Unpublish_name")


def Lookup_name(service_name: str, info: Any = None) -> str:
    raise _unsupported("Lookup_name")


__all__ = ["Intercomm", "Open_port", "Close_port", "Publish_name", "Unpublish_name",
           "Lookup_name"]
