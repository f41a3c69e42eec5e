"""The MPI objects that need no peer: buffers and memory, foreign buffers, attributes,
error classes, requests made by hand, per-process counts in buffer specs."""

from __future__ import annotations

import array
import mmap
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from shoal.spmd import constants as C
from shoal.spmd import datatypes as D
from shoal.spmd import mpi as MPI
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.foreign import foreign_view


def test_buffer_views_memory_and_knows_its_address() -> None:
    raw = bytearray(b"abcdef")
    buf = MPI.buffer(raw)
    assert buf.obj is raw and buf.nbytes == 6 and not buf.readonly and len(buf) == 6
    assert buf.address == MPI.Get_address(raw)
    buf[1:3] = b"XY"
    assert raw == b"aXYdef" and buf[1:3].tobytes() == b"XY"
    with pytest.raises(IndexError):
        buf[::2]
    with pytest.raises(TypeError):
        MPI.buffer(None)
    assert MPI.buffer(b"ro").readonly
    with pytest.raises(TypeError):
        MPI.buffer(b"ro")[:] = 0
    ints = MPI.buffer.allocate(8).cast("i")
    ints[1] = 7
    assert ints.tolist() == [0, 7]
    mem = MPI.Alloc_mem(16)
    assert isinstance(mem, MPI.buffer) and mem.address != 0 and len(mem) == 16
    MPI.Free_mem(mem)
    assert (mem.address, mem.nbytes) == (0, 0)


def test_get_address_of_numpy_and_markers() -> None:
    a = np.arange(10, dtype="d")
    assert MPI.Get_address(a) == a.__array_interface__["data"][0]
    assert MPI.Get_address(a[::2]) == MPI.Get_address(a)  # strided numpy arrays too
    assert MPI.Get_address(MPI.BOTTOM) == 0 and MPI.Get_address(None) == 0
    assert MPI.Aint_diff(MPI.Aint_add(100, 8), 100) == 8


def test_dlpack_tensors_are_read_in_place() -> None:
    class Tensor:
        def __init__(self, a: np.ndarray) -> None:
            self.a = a

        def __dlpack__(self, **kwargs: object) -> object:
            return self.a.__dlpack__(**kwargs)

        def __dlpack_device__(self) -> tuple[int, int]:
            return self.a.__dlpack_device__()

    data = np.arange(6, dtype="i")
    view, fmt = foreign_view(Tensor(data))  # type: ignore[misc]
    assert fmt == "i" and view.nbytes == 24
    assert MPI.Get_address(Tensor(data)) == data.__array_interface__["data"][0]
    spec = parse_buffer(Tensor(data), readonly=True)
    assert spec.datatype == D.INT and spec.count == 6


def test_device_pointers_are_refused_with_a_clear_error_instead_of_a_crash() -> None:
    class GPUArray:  # an interface object whose pointer is not host memory
        __cuda_array_interface__ = {"data": (0x7FF000000000, False), "shape": (4,),
                                    "typestr": "<f4", "version": 3}

    with pytest.raises(TypeError, match="device \\(GPU\\) memory"):
        parse_buffer(GPUArray(), readonly=True)


def test_interface_objects_over_host_memory_work() -> None:
    data = np.arange(3, dtype="d")

    class HostArray:
        __cuda_array_interface__ = {"data": (data.__array_interface__["data"][0], False),
                                    "shape": (3,), "typestr": "<f8", "version": 3}

    spec = parse_buffer(HostArray(), readonly=False)
    assert spec.datatype == D.DOUBLE and spec.count == 3
    np.frombuffer(spec.view, dtype="d")[:] = 9
    assert (data == 9).all()


@pytest.mark.parametrize("form", ["_PlainBuffer", "_ArrayBuffer"])
def test_both_forms_of_mpi_buffer_take_every_kind_of_memory(form: str) -> None:
    from shoal.spmd import memory

    cls = getattr(memory, form)  # MPI.buffer is one of them, by Python version
    assert cls.__name__ == "buffer" and cls.__module__ == "shoal.MPI"
    data = np.arange(4, dtype="i")

    class HostArray:
        __cuda_array_interface__ = {"data": (data.__array_interface__["data"][0], False),
                                    "shape": (4,), "typestr": "<i4", "version": 3}

    for source in (data, bytearray(data.tobytes())):
        buf = cls.frombuffer(source)
        assert type(buf) is cls and len(buf) == 16 and not buf.readonly
        assert list(buf.cast("i")) == [0, 1, 2, 3]
        assert type(buf[4:8]) is cls and buf.toreadonly().readonly
    device = cls.frombuffer(HostArray())  # interface objects count as device memory
    assert type(device) is cls and len(device) == 16
    with pytest.raises(BufferError):
        device.cast("i")  # no host access, as in mpi4py
    np.frombuffer(parse_buffer(device, readonly=False).view, dtype="i")[0] = 7
    assert data[0] == 7  # messages reach the same memory, not a copy
    assert type(cls.allocate(3)) is cls and len(cls.allocate(3)) == 3


def test_mpi_buffer_is_made_once_on_first_use_even_by_threads_at_once() -> None:
    # A fresh process: MPI.buffer is made when first asked for (numpy imported then, not
    # with MPI); eight threads asking at once (a 1 us switch interval interleaves them)
    # all get the one class (eight classes were made before it was made under a lock).
    code = textwrap.dedent("""
        import sys, threading
        sys.setswitchinterval(1e-6)
        from shoal import MPI
        assert "numpy" not in sys.modules
        barrier = threading.Barrier(8)
        seen = []
        def ask():
            barrier.wait()
            seen.append(MPI.buffer)
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        made = {id(c) for c in seen}
        buf = MPI.buffer(bytearray(3))
        print(len(made), MPI.buffer is seen[0], isinstance(buf, seen[-1]))
    """)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(SHOAL_RANK="0", SHOAL_SIZE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True", "True"]


def test_attached_buffers_must_be_writable_and_fit() -> None:
    with pytest.raises(BufferError):
        MPI.Attach_buffer(b"read-only")
    MPI.Attach_buffer(bytearray(100))
    with pytest.raises(C.Exception) as info:
        MPI.Attach_buffer(bytearray(100))
    assert info.value.error_class == C.ERR_BUFFER
    assert len(MPI.Detach_buffer()) == 100
    MPI.Attach_buffer(MPI.BUFFER_AUTOMATIC)
    assert MPI.Detach_buffer() is MPI.BUFFER_AUTOMATIC


def test_attributes_copy_and_delete_callbacks() -> None:
    events: list[tuple[str, int, object]] = []
    keyval = MPI.Comm.Create_keyval(
        copy_fn=lambda comm, key, value: value + 1,
        delete_fn=lambda comm, key, value: events.append(("delete", key, value)))
    comm = MPI.COMM_SELF.Dup()
    comm.Set_attr(keyval, 41)
    dup = comm.Dup()
    assert dup.Get_attr(keyval) == 42 and comm.Get_attr(keyval) == 41
    comm.Free()
    assert events == [("delete", keyval, 41)]
    dup.Delete_attr(keyval)
    assert dup.Get_attr(keyval) is None
    dup.Free()
    MPI.Comm.Free_keyval(keyval)
    with pytest.raises(C.Exception):
        MPI.COMM_SELF.Set_attr(keyval, 1)
    assert MPI.COMM_WORLD.Get_attr(MPI.TAG_UB) >= 32767


def test_datatype_attributes_follow_dup_and_free() -> None:
    deleted: list[object] = []
    keyval = MPI.Datatype.Create_keyval(copy_fn=True, delete_fn=lambda t, k, v: deleted.append(v))
    original = MPI.INT.Dup()
    original.Set_attr(keyval, "value")
    copy = original.Dup()
    assert copy.Get_attr(keyval) == "value"
    copy.Free()
    assert deleted == ["value"] and original.Get_attr(keyval) == "value"
    original.Free()
    assert deleted == ["value", "value"]
    MPI.Datatype.Free_keyval(keyval)


def test_callbacks_that_raise_become_mpi_errors_and_print_their_traceback(capsys) -> None:
    def fail(*args: object) -> None:
        raise ValueError("from the callback")

    keyval = MPI.Datatype.Create_keyval(copy_fn=fail, delete_fn=fail)
    dtype = MPI.INT.Dup()
    dtype.Set_attr(keyval, 1)
    with pytest.raises(C.Exception) as failed:
        dtype.Dup()
    assert failed.value.Get_error_class() == C.ERR_OTHER
    with pytest.raises(C.Exception):
        dtype.Delete_attr(keyval)
    assert dtype.Get_attr(keyval) is None  # deleted even so
    assert capsys.readouterr().err.count("ValueError: from the callback") == 2
    dtype.Free()
    MPI.Datatype.Free_keyval(keyval)

    def fail_mpi(*args: object) -> None:
        raise C.Exception(C.ERR_BUFFER)

    request = MPI.Grequest.Start(fail_mpi)
    request.Complete()
    with pytest.raises(C.Exception) as failed:
        request.Wait()
    assert failed.value.Get_error_class() == C.ERR_BUFFER
    assert capsys.readouterr().err.startswith("Traceback (most recent call last):")
    request.Free()


def test_at_most_32_user_error_handlers_live_at_once() -> None:
    handlers = [MPI.Comm.Create_errhandler(lambda comm, code: None) for _ in range(32)]
    with pytest.raises(RuntimeError):
        MPI.Comm.Create_errhandler(lambda comm, code: None)
    for handler in handlers:
        handler.Free()
    MPI.Comm.Create_errhandler(lambda comm, code: None).Free()


def test_partitioned_requests_to_and_from_proc_null_and_self() -> None:
    data = np.arange(8, dtype="d")
    nobody = MPI.COMM_SELF.Psend_init(data, 4, MPI.PROC_NULL, tag=1)
    nothing = MPI.COMM_SELF.Precv_init(np.zeros(8), 4, MPI.PROC_NULL, tag=1)
    nobody.Start()
    nothing.Start()
    assert nothing.Parrived(3)
    nobody.Pready_range(0, 3)
    status = MPI.Status()
    nothing.Wait(status)
    nobody.Wait()
    assert status.source == MPI.PROC_NULL
    into = np.zeros(8)
    receive = MPI.COMM_SELF.Precv_init(into, 4, 0, tag=2)
    send = MPI.COMM_SELF.Psend_init(data, 4, 0, tag=2)
    receive.Start()
    send.Start()
    send.Pready_list([3, 1])
    assert not receive.Parrived(3)  # the message leaves once every partition is ready
    send.Pready_list([0, 2])
    while not receive.Parrived(0):
        pass
    MPI.Request.Waitall([send, receive])
    assert (into == data).all()
    with pytest.raises(C.Exception):
        send.Parrived(0)  # a send has no arrivals
    with pytest.raises(C.Exception):
        receive.Pready(0)
    with pytest.raises(C.Exception):
        MPI.COMM_SELF.Precv_init(into, 3, 0, tag=2)  # 8 entries do not split in 3
    with pytest.raises(C.Exception):
        MPI.COMM_SELF.Precv_init(into, 4, 0)  # no wildcard tag
    for request in (nobody, nothing, send, receive):
        request.Free()


def test_addressof_gives_memory_holding_the_handle() -> None:
    import ctypes

    for obj in (MPI.INT, MPI.COMM_WORLD, MPI.SUM, MPI.REQUEST_NULL, MPI.MESSAGE_NULL,
                MPI.INFO_ENV):
        address = MPI._addressof(obj)
        assert ctypes.c_uint32.from_address(address).value == MPI._handleof(obj)
        ctypes.c_int.from_address(address).value = 0  # harmless: not the object itself
        assert MPI._addressof(obj) == address and obj == obj
    status = MPI.Status()
    ctypes.c_int.from_address(MPI._addressof(status) + 8).value = 5  # MPI_SOURCE
    assert status.source == 5


def test_ranks_given_as_floats_are_truncated_as_in_mpi4py() -> None:
    comm = MPI.COMM_SELF  # (osu_multi_lat.py computes its partner as nprocs / 2)
    comm.send("object", 0.0, tag=1)
    status = MPI.Status()
    assert comm.recv(source=0.9, tag=1, status=status) == "object" and status.source == 0
    comm.Send(np.arange(3, dtype="i"), 0.0, tag=2)
    got = np.zeros(3, dtype="i")
    comm.Recv(got, 0.0, tag=2)
    assert list(got) == [0, 1, 2]
    request = comm.Isend(np.arange(3, dtype="i"), 0.5, tag=3)
    comm.Recv(got, 0.0, tag=3)
    request.Wait()
    with pytest.raises(TypeError):
        comm.Send(got, "0")  # as in mpi4py


def test_added_error_classes_codes_and_strings() -> None:
    errclass = MPI.Add_error_class()
    assert errclass > C.ERR_LASTCODE and MPI.COMM_WORLD.Get_attr(MPI.LASTUSEDCODE) == errclass
    code = MPI.Add_error_code(errclass)
    MPI.Add_error_string(code, "custom trouble")
    assert MPI.Get_error_class(code) == errclass and MPI.Get_error_string(code) == \
        "custom trouble"
    assert str(MPI.Exception(code)) == "custom trouble"
    with pytest.raises(C.Exception):
        MPI.Remove_error_class(errclass)  # it still has a code
    with pytest.raises(C.Exception):
        MPI.Remove_error_code(code)  # it still has a string
    MPI.Remove_error_string(code)
    MPI.Remove_error_code(code)
    MPI.Remove_error_class(errclass)


def test_generalized_and_persistent_requests_by_hand() -> None:
    seen: list[str] = []

    def query(status: MPI.Status) -> None:
        status.source, status.tag = 3, 4
        seen.append("query")

    request = MPI.Grequest.Start(query, lambda: seen.append("free"))
    assert not request.Test()
    request.complete("result")
    status = MPI.Status()
    assert request.wait(status) == "result" and (status.source, status.tag) == (3, 4)
    assert seen == ["query", "free"] and request == MPI.REQUEST_NULL
    persistent = MPI.COMM_SELF.Recv_init(bytearray(1), source=MPI.PROC_NULL)
    for _ in range(2):
        persistent.Start()
        status = MPI.Status()
        persistent.Wait(status)
        assert status.source == MPI.PROC_NULL and persistent != MPI.REQUEST_NULL
    with pytest.raises(C.Exception):
        persistent.Start() or persistent.Start()  # already active
    persistent.Wait()
    persistent.Free()
    with pytest.raises(C.Exception):
        MPI.REQUEST_NULL.Free()


def test_counts_in_split_buffers_are_per_process_and_checked() -> None:
    buf = np.zeros(7, dtype="i")
    spec = parse_buffer([buf, 2, D.INT], readonly=False, blocks=3)
    assert spec.count == 2 and spec.nbytes == 24  # 2 per process, 3 processes
    with pytest.raises(ValueError, match="for each of 4 processes"):
        parse_buffer([buf, 2, D.INT], readonly=False, blocks=4)
    inferred = parse_buffer(array.array("i", range(6)), readonly=True, blocks=3)
    assert inferred.count == 2


def test_buffers_of_mmap_and_typed_arrays() -> None:
    with mmap.mmap(-1, 16) as region:
        spec = parse_buffer([region, 4, D.INT], readonly=False)
        assert spec.nbytes == 16
        del spec
