"""The klyng-style API (``shoal.init(main)``, ``rank``, ``size``, ``send``, ``recv``, ``end``)
runs the programs in ``programs/klyng_*.py`` under shoal and, through mpi4py, under mpiexec.

Each program checks its results with plain asserts and rank 0 prints ``<name> ok`` at its end.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(150)


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_klyng_messages_match_on_source_and_on_int_or_string_subject(run_ok, backend, ranks):
    run_ok(backend, ranks, "klyng_messages.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_klyng_messages_and_mpi_messages_in_one_program_never_mix(run_ok, backend, ranks):
    run_ok(backend, ranks, "klyng_with_mpi.py")


@pytest.mark.parametrize("ranks", [1, 3])
def test_klyng_master_hands_out_work_on_demand_and_gets_every_result(run_ok, backend, ranks):
    run_ok(backend, ranks, "klyng_work_queue.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_klyng_message_dicts_any_source_minus_one_and_subjects_of_any_hashable_kind(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "klyng_forms.py")


@pytest.mark.parametrize("backend", ["shoal"])
def test_a_klyng_main_that_raises_ends_the_job_at_once_without_waiting_for_its_sends(
        run_program, backend):
    # Rank 0 sleeps 60 s: a job that ends with the error, and before shoal's --timeout,
    # did not wait for it.
    result = run_program(backend, 2, "klyng_fails_after_sending.py", check=False)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "ValueError: rank 1 fails after sending" in result.stderr
    assert "timed out" not in result.stderr
