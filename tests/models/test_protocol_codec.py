"""The Variant codec and the generated protocol modules."""

from __future__ import annotations

import json
import math
import struct

import pytest

from crunch_engine.models.protocol import codec, commons_pb2, dynamic_subclass_pb2
from crunch_engine.models.server import runtime


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, codec.NONE),
        (1.5, codec.DOUBLE),
        (-0.0, codec.DOUBLE),
        (42, codec.INT),
        (-(2**63), codec.INT),
        (2**63 - 1, codec.INT),
        ("héllo ✓", codec.STRING),
        ("", codec.STRING),
        ({"p_up": 0.5, "nested": [1, "a", None]}, codec.JSON),
        ([1, 2.5, {"x": True}], codec.JSON),
    ],
)
def test_round_trip(value: object, kind: int) -> None:
    encoded_kind, data = codec.encode(value)
    assert encoded_kind == kind
    assert codec.decode(encoded_kind, data) == value


def test_wire_bytes_match_the_reference_layout() -> None:
    assert codec.encode(None) == (codec.NONE, b"")
    assert codec.encode(1.25) == (codec.DOUBLE, struct.pack("d", 1.25))
    assert codec.encode(-2) == (codec.INT, (-2).to_bytes(8, "little", signed=True))
    assert codec.encode("é") == (codec.STRING, "é".encode())
    assert codec.decode(codec.JSON, b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_bool_is_an_int_as_in_the_reference() -> None:
    assert codec.encode(True) == (codec.INT, (1).to_bytes(8, "little", signed=True))
    assert codec.decode(*codec.encode(False)) == 0


def test_ints_outside_int64_travel_as_json() -> None:
    kind, data = codec.encode(2**70)
    assert kind == codec.JSON
    assert codec.decode(kind, data) == 2**70


def test_nan_survives_as_json_and_double() -> None:
    assert math.isnan(codec.decode(*codec.encode(float("nan"))))
    assert math.isnan(codec.decode(*codec.encode([float("nan")]))[0])


@pytest.mark.parametrize("value", [(1, 2), {1, 2}, object(), b"bytes", {"x": object()}, 1j])
def test_unsupported_values_are_encoding_errors(value: object) -> None:
    with pytest.raises(codec.EncodingError):
        codec.encode(value)


def test_circular_json_is_an_encoding_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(codec.EncodingError):
        codec.encode(loop)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (codec.INT, b"\x01\x02"),
        (codec.DOUBLE, b"\x00"),
        (codec.STRING, b"\xff\xfe"),
        (codec.JSON, b"{not json"),
        (codec.ARROW, b""),
        (99, b""),
    ],
)
def test_bad_bytes_are_decoding_errors(kind: int, data: bytes) -> None:
    with pytest.raises(codec.DecodingError):
        codec.decode(kind, data)


def test_call_request_is_encoded_once_with_positions_and_keywords() -> None:
    raw = codec.encode_call_request("predict", ("BTC", 60), {"step": 1.5})
    request = dynamic_subclass_pb2.CallRequest.FromString(raw)
    assert request.methodName == "predict"
    assert [a.position for a in request.methodArguments] == [0, 1]
    args, kwargs = codec.decode_arguments(request.methodArguments, request.methodKwArguments)
    assert args == ["BTC", 60]
    assert kwargs == {"step": 1.5}


def test_arguments_are_sorted_by_position() -> None:
    arguments = [
        commons_pb2.Argument(position=1, data=codec.to_variant("second")),
        commons_pb2.Argument(position=0, data=codec.to_variant("first")),
    ]
    assert codec.decode_arguments(arguments, [])[0] == ["first", "second"]


def test_field_numbers_match_the_reference_protocol() -> None:
    def numbers(message: type) -> dict[str, int]:
        return {f.name: f.number for f in message.DESCRIPTOR.fields}

    assert numbers(commons_pb2.Variant) == {"type": 2, "value": 3}
    assert numbers(commons_pb2.Argument) == {"position": 1, "data": 2}
    assert numbers(commons_pb2.KwArgument) == {"keyword": 1, "data": 2}
    assert numbers(commons_pb2.Status) == {"code": 1, "message": 2}
    assert numbers(dynamic_subclass_pb2.SetupRequest) == {
        "className": 1,
        "instanceArguments": 2,
        "instanceKwArguments": 3,
    }
    assert numbers(dynamic_subclass_pb2.CallRequest) == {
        "methodName": 1,
        "methodArguments": 2,
        "methodKwArguments": 3,
    }
    assert numbers(dynamic_subclass_pb2.CallResponse) == {"status": 1, "methodResponse": 2}
    assert dict(commons_pb2.VariantType.items()) == {
        "NONE": 0,
        "DOUBLE": 1,
        "INT": 2,
        "STRING": 3,
        "PARQUET": 4,
        "ARROW": 5,
        "JSON": 6,
    }
    service = dynamic_subclass_pb2.DESCRIPTOR.services_by_name["DynamicSubclassService"]
    assert service.full_name == "dynamic_subclass.DynamicSubclassService"
    assert [m.name for m in service.methods] == ["Setup", "Call", "Rest"]


@pytest.mark.parametrize(
    "text",
    [
        b'{"as_of": "2026-01-01T00:00:00Z", "candles": {"BTC": [{"close": 100.5}]}}',
        b"[NaN, Infinity, -Infinity, 1e400, -0.0]",  # json's extensions orjson refuses
        b'{"big": 123456789012345678901234567890, "neg": -18446744073709551617}',
        b'{"k": 1, "k": 2}',  # duplicate keys: the last wins
        b'{"u": "\\ud800 lone surrogate"}',
        '["caf\u00e9", "\\u00e9"]'.encode("utf-16"),  # json detects UTF-16
        b'{"deep": ' + b"[" * 600 + b"]" * 600 + b"}",
    ],
)
def test_json_decodes_exactly_as_the_json_module(text: bytes) -> None:
    expected = json.loads(text)
    got = codec.decode(codec.JSON, text)
    assert json.dumps(got) == json.dumps(expected)  # NaN-safe equality, types included
    assert type(got) is type(expected)


def test_bad_json_is_a_decoding_error() -> None:
    with pytest.raises(codec.DecodingError, match="bad JSON value"):
        codec.decode(codec.JSON, b'{"unterminated": ')


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2_097_152])
@pytest.mark.parametrize("kind", [codec.DOUBLE, codec.INT, codec.STRING, codec.JSON])
def test_hand_encoded_call_response_is_what_protobuf_serialises(kind: int, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = dynamic_subclass_pb2.CallResponse(
        status=commons_pb2.Status(code="SUCCESS"),
        methodResponse=commons_pb2.Variant(type=kind, value=data),
    ).SerializeToString()
    assert runtime.success_response(kind, data) == expected
    decoded = dynamic_subclass_pb2.CallResponse.FromString(runtime.success_response(kind, data))
    assert (decoded.methodResponse.type, decoded.methodResponse.value) == (kind, data)
