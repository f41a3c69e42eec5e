"""`shoal stream-server`: streams run on it with --host, its root role guarded by --secret."""

from __future__ import annotations

from pathlib import Path

from stream_helpers import LIVENESS, module, start, stop, stream, wait_for_url


def test_streams_run_on_a_stream_server_whose_volunteers_stay(tmp_path: Path):
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1", "--secret",
                       "hunter2", "--workers", "2", stderr=err_file)
    try:
        url = wait_for_url(err, server)
        first = stream(module("square"), *map(str, range(30)), "--server", url, "--secret",
                       "hunter2", "--batch", "2")
        assert first.returncode == 0, first.stderr
        assert first.stdout.split() == [str(i * i) for i in range(30)]
        # The same volunteers serve the next stream, here with errors reported in place.
        second = stream(module("flaky"), "--stdin", "--server", url, "--secret", "hunter2",
                        "--on-error", "report", stdin="2\n3\n4\n")
        assert second.returncode == 0, second.stderr
        assert second.stdout.splitlines() == ["3", "error: ZeroDivisionError: no luck with 3",
                                              "5"]
        assert "no luck with 3" in second.stderr
    finally:
        stop(server)
    assert server.returncode == 0


def test_the_root_role_needs_the_secret(tmp_path: Path):
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1", "--secret",
                       "hunter2", stderr=err_file)
    try:
        url = wait_for_url(err, server)
        for secret in (["--secret", "wrong"], []):
            refused = stream(module("square"), "1", "--server", url, *secret, timeout=LIVENESS)
            assert refused.returncode == 1
            assert "wrong or missing secret for the root role" in refused.stderr
            assert refused.stdout == ""
    finally:
        stop(server)


def test_an_unreachable_stream_server_is_a_clear_error():
    done = stream(module("square"), "1", "--server", "http://127.0.0.1:9/")
    assert done.returncode == 1
    assert "cannot reach the stream-server at ws://127.0.0.1:9/root" in done.stderr
