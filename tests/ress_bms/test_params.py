"""The parameter table: decoding real replies, validation as a set, read-modify-write encoding."""

from __future__ import annotations

import pytest

from ress_bms import params
from ress_bms.commands import ALLOWED_COMMANDS
from ress_bms.errors import ValidationError
from ress_bms.frame import decode_frame
from ress_bms.params import (
    GROUPS,
    GROUPS_BY_KEY,
    PARAMETERS,
    PARAMETERS_BY_KEY,
    RULES,
    default_values,
    groups_for,
    validate,
)

# Real read replies and the write PbmsTools sent after them (nkinnan's Jakiper captures).
READ_THEN_WRITE = {
    "cell_over_voltage": ("~25004600F010010E100E740D340AFA35", "~250046D0F010010E100E740D340AFA21"),
    "cell_under_voltage": (
        "~25004600F010010AF009C40B540AFA24", "~250046D2F010010AF009C40B540AFA0E",
    ),
    "pack_under_voltage": (
        "~25004600F01001AF009C40B5400AFA24", "~250046D6F01001AF009C40B5400AFA0A",
    ),
    "charge_over_current": ("~25004600400C010068006E0AFB1D", "~250046D8400C010068006E0AFB01"),
    "discharge_over_current_2": ("~25004600400C009604009604FB32", "~250046E2A006009604FC4E"),
    "short_circuit": ("~25004600E0020CFD25", "~250046E4E0020CFD0C"),
    "balance": ("~2500460080080D48001EFBE9", "~250046B580080D48001EFBD2"),
    "sleep": ("~2500460080080C1C0005FBF3", "~250046A880080C1C0005FBDA"),
    "full_charge": ("~25004600600ADAC007D005FB60", "~250046AE600ADAC007D005FB3A"),
    "cell_low_temperature": (
        "~25004600501A010AAA0A780AAA0A1409E20A14F7E5",
        "~250046DE501A010AAA0A780AAA0A1409E20A14F7BC",
    ),
    "mos_high_temperature": ("~25004600200E010E2E0EF60DFCFA5D", "~250046E0200E010E2E0EF60DFCFA48"),
    "environment_temperature": (
        "~25004600501A0109E209B009E20D340D660D34F806",
        "~250046E6501A0109E209B009E20D340D660D34F7EB",
    ),
    "current_limit": ("~25004600C0040064FCCE", "~250046EEC0040064FCA4"),
    "inverter_protocol": ("~25004600A006131400FC6F", "~250046ECA006131400FC47"),
}  # fmt: skip


def test_table_is_consistent() -> None:
    assert len(PARAMETERS_BY_KEY) == len(PARAMETERS)
    assert {p.group for p in PARAMETERS} == set(GROUPS_BY_KEY)
    for group in GROUPS:
        assert {group.read, group.write} <= ALLOWED_COMMANDS
        for param in group.parameters:
            assert param.offset + param.size <= group.size
            assert param.minimum < param.maximum
    for rule in RULES:
        assert {rule.lower, rule.upper} <= set(PARAMETERS_BY_KEY)


def test_user_guide_defaults_are_valid_and_respect_every_rule() -> None:
    for cells in (15, 16):
        values = default_values(cells)
        assert validate(values, {}) == values
    assert default_values(16)["pack_over_voltage_protection"] == 57.6  # 3.6 V x 16
    assert default_values(15)["pack_over_voltage_protection"] == 54.0  # 3.6 V x 15
    assert default_values(16)["cell_over_voltage_protection"] == 3.65


@pytest.mark.parametrize("group", READ_THEN_WRITE, ids=str)
def test_write_of_unchanged_values_equals_what_pbmstools_sent(group: str) -> None:
    read, write = READ_THEN_WRITE[group]
    spec = GROUPS_BY_KEY[group]
    payload = decode_frame(read.encode()).info
    values = spec.decode(payload)
    assert spec.encode_write(payload, values) == decode_frame(write.encode()).info


def test_edit_keeps_the_enable_byte_and_other_fields() -> None:
    spec = GROUPS_BY_KEY["pack_over_voltage"]
    payload = decode_frame(b"~25004600F01001E100E740D2F00AFA24").info
    values = spec.decode(payload) | {"pack_over_voltage_alarm": 57.61}
    # PbmsTools' own write of the same change (frames.json "D4H write pack OV").
    assert (
        spec.encode_write(payload, values)
        == decode_frame(b"~250046D4F01001E10AE740D2F00AF9FB").info
    )


def test_discharge_over_current_reads_negative_and_writes_positive() -> None:
    spec = GROUPS_BY_KEY["discharge_over_current"]
    read = bytes.fromhex("01FF97FF920A")  # -105 A, -110 A as the BMS reports them
    values = spec.decode(read)
    assert values["discharge_over_current_alarm"] == 105
    assert values["discharge_over_current_protection"] == 110
    # The write PbmsTools sent (frames.json "DAH write discharge OC1").
    assert spec.encode_write(read, values) == bytes.fromhex("010069006E0A")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cell_over_voltage_alarm": 5.0}, "outside 2.5..4.5"),
        ({"cell_over_voltage_alarm": 3.555}, "multiple of 0.01"),
        ({"cell_over_voltage_delay": 1.7}, "multiple of 0.5"),
        ({"short_circuit_delay": 110}, "multiple of 25"),
        ({"no_such_thing": 1}, "unknown parameter"),
        ({"low_soc_alarm": float("nan")}, "not a number"),
        ({"cell_over_voltage_alarm": 3.7}, "must stay below cell_over_voltage_protection"),
        ({"cell_over_voltage_release": 3.7}, "must stay below"),
        ({"cell_under_voltage_protection": 2.9}, "must stay below cell_under_voltage_alarm"),
        ({"charge_low_temperature_protection": 1}, "must stay below"),
        ({"discharge_over_current_protection": 160}, "discharge_over_current_2_protection"),
    ],
)
def test_invalid_changes_are_refused_with_a_reason(changes: dict[str, float], message: str) -> None:
    current = default_values() | {"discharge_over_current_2_protection": 150}
    with pytest.raises(ValidationError, match=message):
        validate(changes, current)


def test_a_set_is_judged_as_a_whole() -> None:
    """Raising alarm and protection together is fine although the alarm alone would not be."""
    current = default_values()
    merged = validate(
        {"cell_over_voltage_alarm": 3.62, "cell_over_voltage_protection": 3.7}, current
    )
    assert merged["cell_over_voltage_alarm"] == 3.62


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        validate({"cell_over_voltage_alarm": 9, "low_soc_alarm": 101}, {})
    assert "cell_over_voltage_alarm" in str(err.value)
    assert "low_soc_alarm" in str(err.value)


def test_groups_for_includes_rule_partners() -> None:
    keys = {g.key for g in groups_for(["discharge_over_current_protection"])}
    assert keys == {"discharge_over_current", "discharge_over_current_2"}
    assert [g.key for g in groups_for(["sleep_delay"])] == ["sleep"]


@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: p.key)
def test_every_value_in_range_on_a_step_is_representable(param) -> None:  # type: ignore[no-untyped-def]
    for value in (param.minimum, param.maximum, param.minimum + param.step):
        assert param.check(value) is None
        assert param.decode_raw(param.raw(value)) == pytest.approx(value)


def test_problems_say_what_is_wrong_for_callers_to_explain() -> None:
    """Each refusal carries its reason and, for a rule, the partner and the side to stay on."""
    current = params.default_values()
    with pytest.raises(params.ParameterValidationError) as err:
        params.validate({"cell_over_voltage_alarm": 3.7}, current)
    (problem,) = err.value.problems
    assert (problem.key, problem.reason, problem.value) == ("cell_over_voltage_alarm", "order", 3.7)
    assert (problem.other, problem.other_value, problem.below) == (
        "cell_over_voltage_protection",
        3.65,
        True,
    )
    assert str(err.value) == problem.text
    with pytest.raises(params.ParameterValidationError) as err:
        params.validate({"cell_over_voltage_protection": 3.4}, current)
    assert {(p.other, p.below) for p in err.value.problems} == {
        ("cell_over_voltage_alarm", False),
    }
    with pytest.raises(params.ParameterValidationError) as err:
        params.validate({"cell_over_voltage_alarm": 3.453, "nope": 1}, current)
    assert [p.reason for p in err.value.problems] == ["unknown", "step"]


def test_steps_around_an_off_step_value() -> None:
    parameter = params.PARAMETERS_BY_KEY["cell_over_voltage_protection"]
    assert not parameter.on_step(3.453)
    assert parameter.neighbours(3.453) == (3.45, 3.46)
    assert parameter.on_step(3.6000000001)
    assert parameter.snap(3.6000000001) == 3.6
    assert params.PARAMETERS_BY_KEY["cell_over_voltage_delay"].neighbours(19.9) == (19.5, 20.0)
