"""The cluster client's parts that need no master: settings, errors, SSE, labelled output."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.cli.pool import LabelledOutput
from shoal.cluster.client import ClientSettings, ClusterClient, parse_sse
from shoal.cluster.client_errors import (
    AuthenticationError,
    ClientConfigurationError,
    ConflictError,
    InvalidRequestError,
    MasterFailureError,
    MasterUnreachableError,
    error_from_response,
)


def _write_config(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "client.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_arguments_beat_the_environment_which_beats_client_toml(tmp_path: Path) -> None:
    config = _write_config(tmp_path, '[client]\nmaster = "file-host:1"\ntoken = "file-token"\n')
    env = {"SHOAL_MASTER": "env-host:2", "SHOAL_TOKEN": "env-token"}
    from_file = ClientSettings.resolve(env={}, config_file=config)
    assert (from_file.master, from_file.token) == ("http://file-host:1", "file-token")
    from_env = ClientSettings.resolve(env=env, config_file=config)
    assert (from_env.master, from_env.token) == ("http://env-host:2", "env-token")
    given = ClientSettings.resolve("https://arg-host:3/", "arg-token", env=env,
                                   config_file=config)
    assert (given.master, given.token) == ("https://arg-host:3", "arg-token")


def test_a_token_in_a_file_others_can_read_is_refused_with_the_chmod_to_run(
        tmp_path: Path) -> None:
    config = _write_config(tmp_path, '[client]\nmaster = "h:1"\ntoken = "t"\n', mode=0o644)
    with pytest.raises(ClientConfigurationError, match="chmod 600"):
        ClientSettings.resolve(env={}, config_file=config)


def test_missing_master_or_token_says_where_to_give_them(tmp_path: Path) -> None:
    missing = tmp_path / "client.toml"
    with pytest.raises(ClientConfigurationError, match="--master URL, set SHOAL_MASTER"):
        ClientSettings.resolve(env={}, config_file=missing)
    with pytest.raises(ClientConfigurationError, match="shoal master token create"):
        ClientSettings.resolve("h:1", env={}, config_file=missing)
    with pytest.raises(ClientConfigurationError, match="bad master URL"):
        ClientSettings.resolve("ftp://h:1", "t", env={}, config_file=missing)


def test_a_refused_connection_names_the_url_and_what_to_do() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ClusterClient(f"127.0.0.1:{port}", "t") as client, \
            pytest.raises(MasterUnreachableError) as caught:
        client.workers()
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "connection refused" in message and "shoal master" in message


def test_the_cli_prints_one_line_and_exits_1_when_the_master_is_down(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SHOAL_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "shoal", "workers", "--master",
                           f"127.0.0.1:{port}", "--token", "t"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("shoal workers: error: cannot reach the shoal master")


def test_contract_errors_become_classes_that_keep_the_masters_message() -> None:
    body = {"error": {"code": "unknown_worker", "message": "no worker named 'pi-9'"}}
    error = error_from_response(400, body)
    assert isinstance(error, InvalidRequestError)
    assert (error.status, error.code, str(error)) == (400, "unknown_worker",
                                                      "no worker named 'pi-9'")
    assert isinstance(error_from_response(409, {"error": {"code": "no_workers",
                                                          "message": "none"}}), ConflictError)
    unauthorized = error_from_response(401, {"error": {"code": "unauthorized", "message": "x"}})
    assert isinstance(unauthorized, AuthenticationError)
    assert "--token" in str(unauthorized)
    proxy_page = error_from_response(502, None)
    assert isinstance(proxy_page, MasterFailureError)
    assert "HTTP 502" in str(proxy_page)


def test_server_sent_events_are_split_at_blank_lines_and_comments_skipped() -> None:
    lines = [":keep-alive", "", "event: output", 'data: {"a":', "data: 1}", "",
             "data: plain", "", "event: end", "data: {}"]
    events = list(parse_sse(iter(lines)))
    assert [(e.event, e.data) for e in events] == [
        ("output", '{"a":\n1}'), ("message", "plain"), ("end", "{}")]


def test_output_cut_mid_line_is_printed_as_whole_lines_labelled_by_worker() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = LabelledOutput(out, err)
    printer.write("pi-1", "stdout", "hel")
    printer.write("pi-2", "stdout", "other\n")
    printer.write("pi-1", "stdout", "lo\nwor")
    printer.write("pi-1", "stderr", "oops")
    printer.end("pi-1")
    assert out.getvalue() == "[pi-2] other\n[pi-1] hello\n[pi-1] wor\n"
    assert err.getvalue() == "[pi-1] oops\n"
