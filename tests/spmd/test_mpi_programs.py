"""The conformance suite: the MPI programs in ``programs/`` pass under shoal and under mpi4py.

Each program does many checks, written against mpi4py's real behaviour on MPICH, with plain
asserts; it exits non-zero on the first failure and rank 0 prints ``<name> ok`` at its end.
Every test runs under both backends (``backend`` is parametrized in conftest.py) and at a
few sizes: the ``mpi`` runs show that the programs are right, the ``shoal`` runs that shoal
behaves like mpi4py.
"""

from __future__ import annotations

import pytest

TIMEOUT = 150  # seconds per test; a run is killed after 90 (conftest.HARD_TIMEOUT)

pytestmark = pytest.mark.timeout(TIMEOUT)


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_environment_reports_ranks_constants_clocks_and_finalizes(run_ok, backend, ranks):
    run_ok(backend, ranks, "environment.py")


@pytest.mark.parametrize("ranks", [2, 4])
def test_point_to_point_objects_arrive_intact_with_the_right_status(run_ok, backend, ranks):
    run_ok(backend, ranks, "p2p_objects.py")


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_proc_null_completes_at_once_and_wildcards_report_the_real_sender(run_ok, backend,
                                                                          ranks):
    run_ok(backend, ranks, "proc_null_and_wildcards.py")


@pytest.mark.parametrize("ranks", [2, 4])
def test_messages_are_never_overtaken_and_nonblocking_ones_complete_in_any_order(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "ordering.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_requests_wait_test_cancel_and_report_their_status_as_in_mpi4py(run_ok, backend,
                                                                        ranks):
    run_ok(backend, ranks, "requests.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_point_to_point_buffers_take_every_buffer_spec_and_datatype(run_ok, backend, ranks):
    run_ok(backend, ranks, "p2p_buffers.py")


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_object_collectives_give_mpi4py_results_at_every_root_with_every_op(run_ok, backend,
                                                                            ranks):
    run_ok(backend, ranks, "collectives_objects.py")


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_buffer_collectives_give_mpi4py_results_for_every_op_datatype_and_in_place(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "collectives_buffers.py")


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_a_short_allreduce_is_bitwise_the_general_paths_on_every_type_and_op_and_path_mix(
        run_ok, backend, ranks):
    # On shoal at 2 and 4 ranks, the compiled rings' one-call Allreduce (and the Python
    # steps it leaves to when a partner is late); at 3, the general path; at every count
    # an op not defined for the type fails on every rank (it hung at 3 ranks).
    run_ok(backend, ranks, "allreduce_short.py")


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_short_allreduce_left_part_way_by_the_rings_goes_on_in_python_without_numpy(
        run_ok, ranks):
    run_ok("shoal", ranks, "allreduce_steps_without_numpy.py")


@pytest.mark.parametrize("ranks", [1, 3, 4])
def test_vector_collectives_honour_counts_displacements_and_in_place(run_ok, backend, ranks):
    run_ok(backend, ranks, "collectives_vector.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_large_messages_cross_in_both_directions_without_deadlock_or_corruption(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "large_messages.py")


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_communicators_and_groups_split_dup_create_and_compare_as_in_mpi(run_ok, backend,
                                                                        ranks):
    run_ok(backend, ranks, "communicators.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_traffic_on_different_communicators_never_mixes(run_ok, backend, ranks):
    run_ok(backend, ranks, "comm_isolation.py")


@pytest.mark.parametrize("ranks", [2, 4])
def test_intercommunicators_join_two_groups_as_in_mpi(run_ok, backend, ranks):
    """Create_intercomm and Create_from_groups, point-to-point to the remote group, every
    collective from group to group (MPI.ROOT / PROC_NULL), nonblocking and persistent
    forms, Merge, Split, Create, Dup; at 4 ranks the groups are uneven (1 and 3)."""
    run_ok(backend, ranks, "intercomms.py")


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_errors_raise_mpi_exception_with_the_right_error_class_and_never_hang(run_ok, backend,
                                                                             ranks):
    run_ok(backend, ranks, "errors.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_a_failing_assert_on_one_rank_fails_the_whole_run_instead_of_hanging(
        run_program, backend, ranks):
    result = run_program(backend, ranks, "assert_fails.py", check=False, timeout=60)
    assert result.returncode != 0, f"a run with a failed assert exited 0\n{result.stdout}"
    assert "deliberate failure on rank 1" in result.stderr, result.stderr[-4000:]
    assert "should never get here" not in result.stdout, result.stdout


# -- mpi4py's API beyond the basics: each program also passes on mpi4py + MPICH ----------------


@pytest.mark.parametrize("ranks", [2])
def test_mpi_objects_are_handles_copied_subclassed_freed_and_pickled_as_in_mpi4py(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "object_model.py")


@pytest.mark.parametrize("ranks", [1, 3])
def test_nonblocking_and_persistent_collectives_complete_with_the_blocking_results(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "nonblocking_collectives.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_derived_datatypes_carry_data_through_p2p_collectives_and_pack(run_ok, backend,
                                                                       ranks):
    run_ok(backend, ranks, "derived_datatypes.py")


@pytest.mark.parametrize("ranks", [1, 3])
def test_explicit_counts_in_split_collective_buffers_are_per_process(run_ok, backend, ranks):
    run_ok(backend, ranks, "explicit_counts.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_persistent_buffered_and_combined_point_to_point_modes(run_ok, backend, ranks):
    run_ok(backend, ranks, "p2p_modes.py")


@pytest.mark.parametrize("ranks", [3])
def test_swapped_object_codecs_and_user_operations_behave_as_in_mpi4py(run_ok, backend,
                                                                      ranks):
    run_ok(backend, ranks, "pickle_and_ops.py")


@pytest.mark.parametrize("ranks", [2])
def test_dlpack_and_array_interface_buffers_travel_in_place(run_ok, backend, ranks):
    run_ok(backend, ranks, "foreign_buffers.py")


@pytest.mark.parametrize("ranks", [1, 4])
def test_cartesian_graph_and_distributed_graph_topologies_route_neighbor_collectives(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "topologies.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_partitioned_sends_arrive_whole_after_every_partition_is_ready(run_ok, backend,
                                                                      ranks):
    run_ok(backend, ranks, "partitioned.py")


@pytest.mark.parametrize("ranks", [1, 3])
def test_agreement_and_shrink_behave_as_with_no_failed_process(run_ok, backend, ranks):
    run_ok(backend, ranks, "fault_tolerance.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_threads_of_a_rank_send_and_receive_at_once_thread_multiple(run_ok, backend, ranks):
    run_ok(backend, ranks, "threads.py")


@pytest.mark.parametrize("ranks", [2, 3])
def test_bursts_of_large_messages_arrive_intact_whichever_order_they_are_received_in(
        run_ok, backend, ranks):
    run_ok(backend, ranks, "burst_of_large_messages.py")
