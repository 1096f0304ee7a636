"""Packs: the shipped ones validate; bad input gets a precise error; specs merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crunch_engine.errors import ConfigError
from crunch_engine.packs.loader import (
    builtin_pack_names,
    list_packs,
    load_pack,
    load_pack_with_spec,
)
from crunch_engine.slots.spec import SlotName


def test_three_packs_ship_and_wire_all_ten_slots() -> None:
    assert builtin_pack_names() == ["baseline", "demo", "realtime", "tournament"]
    packs = {p.id: p for p in list_packs()}
    assert packs["baseline"].every_seconds == 60
    assert packs["realtime"].every_seconds == 15
    for pack in packs.values():
        assert set(pack.callables) == set(SlotName)
        assert pack.checkpoint_interval_seconds > 0
    tournament = packs["tournament"]
    samples = {c.scope_template.get("sample") for c in tournament.scheduled_prediction_configs}
    assert samples == {"in-sample", "out-of-sample"}
    assert [b.key for b in tournament.scoring.leaderboards] == [
        "in-sample",
        "out-of-sample",
        "combined",
    ]


def test_unknown_pack_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown pack 'nope': known packs are baseline, demo, realtime, tournament",
    ):
        load_pack("nope")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "pack.json", '{\n  "id": "x",\n  "description": "d",\n}\n')
    with pytest.raises(ConfigError) as caught:
        load_pack(str(bad))
    assert f"{bad}: invalid JSON at line 4, column 1" in str(caught.value)


def baseline_data() -> dict:
    return json.loads((Path(__file__).parents[2] / "packs" / "baseline" / "pack.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["scheduled_prediction_configs"][0]["schedule"].update(every_seconds=0),
            "$.scheduled_prediction_configs[0].schedule.every_seconds: Input should be greater than 0 (got 0)",
        ),
        (lambda d: d["callables"].pop("SCORING_FUNCTION"), "missing: SCORING_FUNCTION"),
        (
            lambda d: d["callables"].update(RAW_INPUT_PROVIDER="no colon"),
            "is not of the form package.module:attr",
        ),
        (
            lambda d: d.update(checkpoint_interval_seconds="soon"),
            "$.checkpoint_interval_seconds: Input should be a valid integer",
        ),
        (lambda d: d.update(surprise=1), "$.surprise: Extra inputs are not permitted"),
        (
            lambda d: d["scoring"].update(rank_by="weekly"),
            "rank_by 'weekly' is not one of the windows",
        ),
        (
            lambda d: d["scheduled_prediction_configs"][0]["scope_template"].pop("horizon_seconds"),
            "$.scheduled_prediction_configs[0].scope_template: horizon_seconds must be a positive integer",
        ),
    ],
)
def test_invalid_fields_name_the_json_path(tmp_path: Path, mutate, expected: str) -> None:
    data = baseline_data()
    mutate(data)
    path = write(tmp_path / "pack.json", json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        load_pack(str(path))
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_spec_merges_slot_by_slot_and_config_by_config(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "spec.json",
        json.dumps(
            {
                "callables": {"SCORING_FUNCTION": "my_pkg.scoring:score"},
                "scheduled_prediction_configs": [
                    {"scope_key": "btc-up-300s", "schedule": {"every_seconds": 30}},
                    {
                        "scope_key": "eth-up-60s",
                        "scope_template": {"asset": "ETH", "horizon_seconds": 60},
                        "schedule": {"every_seconds": 60},
                    },
                ],
                "scoring": {"windows": {"hourly": 3600}},
            }
        ),
    )
    pack, parsed = load_pack_with_spec("baseline", spec)
    assert parsed is not None
    assert pack.callables[SlotName.SCORING_FUNCTION] == "my_pkg.scoring:score"
    assert pack.callables[SlotName.RAW_INPUT_PROVIDER].endswith(":provide_raw_input")
    configs = {c.scope_key: c for c in pack.scheduled_prediction_configs}
    assert configs["btc-up-300s"].schedule.every_seconds == 30
    assert configs["btc-up-300s"].scope_template["horizon_seconds"] == 300  # kept from the pack
    assert configs["eth-up-60s"].scope_template["asset"] == "ETH"
    assert set(pack.scoring.windows) == {"recent", "steady", "anchor", "hourly"}


def test_bad_spec_is_reported_against_the_spec_file(tmp_path: Path) -> None:
    spec = write(tmp_path / "spec.json", json.dumps({"callables": {"NOT_A_SLOT": "a.b:c"}}))
    with pytest.raises(ConfigError) as caught:
        load_pack_with_spec("baseline", spec)
    assert str(spec) in str(caught.value) and "$.callables.NOT_A_SLOT" in str(caught.value)

    incomplete = write(
        tmp_path / "spec2.json",
        json.dumps({"scheduled_prediction_configs": [{"scope_key": "new-one", "active": True}]}),
    )
    with pytest.raises(ConfigError) as caught:
        load_pack_with_spec("baseline", incomplete)
    message = str(caught.value)
    assert (
        "merged with" in message
        and "$.scheduled_prediction_configs[1].schedule: Field required" in message
    )


def test_a_schedule_file_merges_over_pack_and_spec(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "spec.json",
        json.dumps({"scheduled_prediction_configs": [{"scope_key": "btc-up-300s", "order": 3}]}),
    )
    schedule = write(
        tmp_path / "scheduled_prediction_configs.json",
        json.dumps([{"scope_key": "btc-up-300s", "schedule": {"every_seconds": 20}}]),
    )
    pack, _ = load_pack_with_spec("baseline", spec, schedule)
    (config,) = pack.scheduled_prediction_configs
    assert (config.schedule.every_seconds, config.order) == (20, 3)  # file, then spec
    assert config.scope_template["horizon_seconds"] == 300  # kept from the pack
    # A missing file is simply not used; a bad one names itself.
    assert load_pack_with_spec("baseline", None, tmp_path / "absent.json")[0].id == "baseline"
    bad = write(tmp_path / "bad.json", json.dumps({"scope_key": "x"}))
    with pytest.raises(ConfigError, match=r"bad\.json: expected a JSON array"):
        load_pack_with_spec("baseline", None, bad)
    wrong = write(tmp_path / "wrong.json", json.dumps([{"scope_key": "btc-up-300s", "x": 1}]))
    with pytest.raises(ConfigError, match=r"wrong\.json"):
        load_pack_with_spec("baseline", None, wrong)
