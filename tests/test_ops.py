"""The op registry: every op module answers for itself, and no stage branches on an op's name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import ops
from conformance.render import templates_dir
from tests.case_strategies import OpConfig

ROOT = Path(__file__).resolve().parent.parent
OP_NAMES = ops.names()


def test_registry_lists_every_op_and_names_the_known_ones_on_a_miss():
    assert set(OP_NAMES) == {"GroupConvolution", "GroupConvolutionBackpropData", "Convolution",
                             "ConvolutionBackpropData"}
    with pytest.raises(KeyError, match="known: GroupConvolution"):
        ops.get("Deconvolution")
    assert ops.having_field("output_shape") == ("GroupConvolutionBackpropData", "ConvolutionBackpropData")


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_op_has_its_template_and_a_spec_scaffold(name):
    op = ops.get(name)
    assert (templates_dir() / f"{op.template}.xml").is_file()
    assert f"op: {name}\n" in op.scaffolds["spec"]
    if op.sibling is not None:   # the sibling is the same op with one group and no GROUPS axis
        sibling = ops.get(op.sibling)
        assert not sibling.grouped and sibling.transposed == op.transposed


def test_no_stage_branches_on_an_op_name():
    """Outside conformance/ops/ an op's name appears only in docstrings/comments and messages."""
    branches = re.compile(r"""(==|!=|\bin)\s*\(?\s*["'](Group)?Convolution""")
    for path in (ROOT / "conformance").glob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert not branches.search(line), f"{path.name}:{number}: {line.strip()}"
            assert "GROUP_CONVOLUTION" not in line, f"{path.name}:{number}: {line.strip()}"


@pytest.mark.parametrize("name", OP_NAMES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_every_op_strategy_draws_valid_cases_the_oracle_computes(name, data):
    """``Op.strategy`` draws cases the loader accepts, of that op, whose oracle output has the
    spec formula's shape (oracle.reference asserts it)."""
    from conformance import api
    op_name, fields = data.draw(ops.get(name).strategy())
    case = OpConfig(op_name, fields).case()
    assert case.op == name
    assert len(case.kernel_shape) == ops.get(name).kernel_rank(len(case.data_shape))
    api.reference(case, api.make_inputs(case))
