"""The stream commands speak the one CLI vocabulary (docs/contracts/cli-vocabulary.md, issue
13 item 5): `--server URL` names a stream-server, `--host` keeps mpiexec's meaning, and
stream-server's default port comes from shoal.ports."""

from __future__ import annotations

from pathlib import Path

from stream_helpers import module, start, stop, stream, wait_for_url

from shoal import ports


def test_the_old_host_option_is_one_line_pointing_to_server():
    done = stream(module("square"), "1", "--host", "http://127.0.0.1:9/")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "shoal stream: error: --host is the hosts to run ranks on (shoal run, mpiexec's "
        "meaning); use --server URL to run the stream on a shoal stream-server"]


def test_server_names_the_stream_server():
    done = stream(module("square"), "1", "--server", "http://127.0.0.1:9/")
    assert done.returncode == 1
    assert "cannot reach the stream-server at ws://127.0.0.1:9/root" in done.stderr


def test_stream_toml_says_host_is_now_server(tmp_path: Path):
    (tmp_path / "stream.toml").write_text('[stream]\nhost = "http://127.0.0.1:9/"\n')
    done = stream(module("square"), "1", extra_env={"SHOAL_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "[stream] host is now server" in done.stderr


def test_stream_server_listens_on_its_own_default_port(tmp_path: Path):
    assert ports.STREAM_SERVER == 7460 != ports.MASTER
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--bind", "127.0.0.1", stderr=err_file)
    try:
        url = wait_for_url(err, server)
    finally:
        stop(server)
    assert url == f"http://127.0.0.1:{ports.STREAM_SERVER}/"
