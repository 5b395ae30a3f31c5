"""Tests that share cluster-wide state are scheduled as one unit of work (one xdist worker, in turn)."""

from tests.conftest import SerialGroupScheduling


def scope(nodeid: str) -> str:
    # _split_scope reads nothing from the instance: no xdist session needed.
    return SerialGroupScheduling._split_scope(object.__new__(SerialGroupScheduling), nodeid)


def test_helm_suites_share_one_scope() -> None:
    chart = scope("tests/e2e/test_chart.py::test_can_i_matrix_cluster_mode")
    rbac = scope("tests/e2e/test_operator_rbac.py::test_chart_rbac_is_enough_to_delete_a_bridge")
    assert chart == rbac == "group:helm"


def test_a_single_test_of_a_module_can_join_a_group() -> None:
    member = "tests/integration/operator/test_operator.py::test_service_monitor_follows_the_spec"
    assert scope(member) == scope("tests/e2e/test_manifests.py::test_x") == "group:monitoring-crds"
    assert scope("tests/integration/operator/test_operator.py::test_other") != scope(member)


def test_other_tests_are_their_own_unit() -> None:
    a = "tests/integration/bridge/test_api.py::test_a"
    b = "tests/integration/bridge/test_api.py::test_b"
    assert scope(a) == a and scope(b) == b
    # A prefix match is by path, not by string: test_chart_extra.py is not test_chart.py.
    assert scope("tests/e2e/test_chart_extra.py::test_x") == "tests/e2e/test_chart_extra.py::test_x"
