"""klyng's own forms beside the keyword form: message dicts for send and recv, -1 as any
source, "-1" as any subject in a criteria dict, and subjects of any hashable, picklable kind
(floats, tuples, frozensets, None). Needs 2 or more ranks."""

import shoal


def expect_type_error(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    raise AssertionError(f"{call.__name__}{args} was accepted")


def main():
    rank, size = shoal.rank(), shoal.size()
    assert size >= 2, size

    # --- klyng's message dicts, read by either form ------------------------------------------
    if rank == 1:
        shoal.send({"to": 0, "data": "dict, subject s", "subject": "s"})
        shoal.send({"to": 0, "data": "dict, no subject"})
        shoal.send("keyword, subject k", to=0, subject="k")
    elif rank == 0:
        assert shoal.recv({"from": 1, "subject": "k"}) == "keyword, subject k"
        assert shoal.recv(source=1, tag="s") == "dict, subject s"
        assert shoal.recv({"from": 1}) == "dict, no subject"

    # --- -1 is any source (not MPI's PROC_NULL), in both forms --------------------------------
    if rank == 0:
        got = sorted(shoal.recv(source=-1, tag="hello") for _ in range(size - 1))
        assert got == list(range(1, size)), got
        got = sorted(shoal.recv({"from": -1, "subject": "again"}) for _ in range(size - 1))
        assert got == list(range(1, size)), got
    else:
        shoal.send(rank, to=0, tag="hello")
        shoal.send({"to": 0, "data": rank, "subject": "again"})

    # --- subjects of any hashable kind: equal subjects match, others do not ------------------
    subjects = [2.5, ("job", 3), ("nested", (1, 2.0)), frozenset({"a", "b", "c"}), None,
                b"raw", True, 7.0]
    if rank == 1:
        for number, subject in reversed(list(enumerate(subjects))):  # matched by subject
            shoal.send({"to": 0, "data": number, "subject": subject})
    elif rank == 0:
        for number, subject in enumerate(subjects):
            assert shoal.recv({"from": 1, "subject": subject}) == number, subject
    if rank == 1:
        shoal.send("seven", to=0, tag=7.0)       # 7.0 and 7 are one subject, as in klyng
        shoal.send("one", to=0, tag=1)           # and True is not 1
        shoal.send("true", to=0, tag=True)
    elif rank == 0:
        assert shoal.recv(source=1, tag=7) == "seven"
        assert shoal.recv(source=1, subject=True) == "true"
        assert shoal.recv(source=1, tag=1) == "one"

    # --- "-1" is any subject in a criteria dict ------------------------------------------------
    if rank == 1:
        shoal.send({"to": 0, "data": "whatever", "subject": ("odd", 1)})
    elif rank == 0:
        assert shoal.recv({"from": 1, "subject": "-1"}) == "whatever"

    # --- mistakes are TypeErrors that say what to write ----------------------------------------
    assert "'to' and 'data'" in expect_type_error(shoal.send, {"data": 1})
    assert "'to' and 'data'" in expect_type_error(shoal.send, {"to": 0})
    assert "hashable" in expect_type_error(shoal.send, 1, to=rank, tag=[1, 2])
    assert "not both" in expect_type_error(shoal.send, 1, to=rank, tag=1, subject=2)
    assert "'from' and 'subject'" in expect_type_error(shoal.recv, {"source": 0})

    if rank == 0:
        print("klyng_forms ok", flush=True)


shoal.init(main)
