"""What Setup / Call / Rest do to the participant's code, independent of the transport.

Every method takes the serialised request and returns the serialised response and never
raises. One call runs at a time, on the worker thread or, for calls known to be fast,
inline on the event loop thread (see ``dispatch.py``).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import sys
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from crunch_engine.models.protocol import codec, commons_pb2, dynamic_subclass_pb2

logger = logging.getLogger("crunch_engine.models.server")

SUCCESS = "SUCCESS"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
BAD_IMPLEMENTATION = "BAD_IMPLEMENTATION"
SETUP_FAILED = "SETUP_FAILED"
MODEL_FAILED = "MODEL_FAILED"
UNKNOWN = "UNKNOWN"

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_RESPONSE_OVERHEAD = 1024  # status and framing around the encoded result

_Status = commons_pb2.Status
_CallResponse = dynamic_subclass_pb2.CallResponse
_SUCCESS_CALL_EMPTY = _CallResponse(status=_Status(code=SUCCESS)).SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def success_response(kind: int, data: bytes) -> bytes:
    """``CallResponse(status=SUCCESS, methodResponse=Variant(kind, data))`` serialised,
    byte for byte as protobuf does it (a test pins it), without building three messages
    per call: every model process answers every cycle."""
    variant = (b"\x10" + _varint(kind) if kind else b"") + (
        b"\x1a" + _varint(len(data)) if data else b""
    )
    size = len(variant) + len(data)
    return b"".join((_SUCCESS_CALL_EMPTY, b"\x12", _varint(size), variant, data))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Method:
    """A bound method with what its signature accepts, computed once per method name."""

    __slots__ = ("accepts_any", "function", "keywords", "positional")

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):  # builtins without a signature: pass everything
            parameters = []
            self.accepts_any = True
        else:
            self.accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self.keywords = [p.name for p in parameters if p.kind in kinds]
        self.positional = [
            p.name
            for p in parameters
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]

    def accepted(self, n_args: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments the method accepts (the others are dropped, as the reference does)."""
        if self.accepts_any or not kwargs:
            return kwargs
        taken = set(self.positional[:n_args])
        return {k: v for k, v in kwargs.items() if k in self.keywords and k not in taken}


class ModelRuntime:
    """The participant's model instance and the three RPCs acting on it."""

    def __init__(self, code_dir: str, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.code_dir = code_dir
        self.max_message_bytes = max_message_bytes
        self.instance: Any = None
        self._methods: dict[str, _Method] = {}
        self._dropped_reported: set[tuple[str, tuple[str, ...]]] = set()

    # -- Setup ---------------------------------------------------------------------------

    def setup(self, payload: bytes) -> bytes:
        try:
            code, message = self._setup(payload)
        except Exception as error:  # the transport must always get an answer
            logger.exception("Setup failed unexpectedly")
            code, message = UNKNOWN, _describe(error)
        response = dynamic_subclass_pb2.SetupResponse(status=_Status(code=code, message=message))
        return response.SerializeToString()

    def _setup(self, payload: bytes) -> tuple[str, str]:
        try:
            request = dynamic_subclass_pb2.SetupRequest.FromString(payload)
        except DecodeError as error:
            return INVALID_ARGUMENT, f"undecodable SetupRequest: {error}"
        if self.instance is not None:
            return SUCCESS, "Instance already exists"
        class_name = request.className.strip()
        if not class_name or "." not in class_name:
            return INVALID_ARGUMENT, f"className must be 'package.module.Class', got {class_name!r}"
        try:
            args, kwargs = codec.decode_arguments(
                request.instanceArguments, request.instanceKwArguments
            )
        except codec.DecodingError as error:
            return INVALID_ARGUMENT, f"instance arguments: {error}"
        try:
            base = _resolve_class(class_name)
        except Exception as error:
            return BAD_IMPLEMENTATION, f"cannot import base class {class_name}: {_describe(error)}"
        found, import_errors = self._find_subclass(base, class_name.partition(".")[0])
        if found is None:
            detail = "; ".join(import_errors)
            suffix = f" (import errors: {detail})" if detail else ""
            return BAD_IMPLEMENTATION, f"no subclass of {class_name} in {self.code_dir}{suffix}"
        try:
            self.instance = found(*args, **kwargs)
        except Exception as error:
            logger.exception("constructor of %s raised", found.__qualname__)
            return SETUP_FAILED, f"{found.__qualname__}(): {_describe(error)}"
        self._methods.clear()
        logger.info("instance of %s.%s created", found.__module__, found.__qualname__)
        return SUCCESS, "Instance created successfully"

    def _find_subclass(self, base: type, base_package: str) -> tuple[type | None, list[str]]:
        """The first class of the code dir subclassing ``base`` outside the base's package."""
        if self.code_dir not in sys.path:
            sys.path.insert(0, self.code_dir)
        errors: list[str] = []
        skip_prefix = base_package + "."

        def on_error(name: str) -> None:
            errors.append(f"{name}: {_describe(sys.exc_info()[1] or Exception())}")

        for module_info in pkgutil.walk_packages([self.code_dir], onerror=on_error):
            try:
                module = importlib.import_module(module_info.name)
            except BaseException as error:  # a SystemExit in user code too
                logger.exception("importing %s failed", module_info.name)
                errors.append(f"{module_info.name}: {_describe(error)}")
                continue
            for _, candidate in inspect.getmembers(module, inspect.isclass):
                owner = getattr(candidate, "__module__", "") or ""
                if candidate is base or owner == base_package or owner.startswith(skip_prefix):
                    continue
                if issubclass(candidate, base) and not inspect.isabstract(candidate):
                    return candidate, errors
        return None, errors

    # -- Call ----------------------------------------------------------------------------

    def call(self, payload: bytes) -> bytes:
        try:
            return self._call(payload)
        except Exception as error:
            logger.exception("Call failed unexpectedly")
            return _failure(UNKNOWN, _describe(error))

    def _call(self, payload: bytes) -> bytes:
        try:
            request = dynamic_subclass_pb2.CallRequest.FromString(payload)
        except DecodeError as error:
            return _failure(INVALID_ARGUMENT, f"undecodable CallRequest: {error}")
        if self.instance is None:
            return _failure(FAILED_PRECONDITION, "Setup has not been called yet")
        name = request.methodName
        method = self._methods.get(name)
        if method is None:
            if not name:
                return _failure(INVALID_ARGUMENT, "methodName cannot be empty")
            if name.startswith("_"):
                return _failure(INVALID_ARGUMENT, f"private method {name!r} cannot be called")
            function = getattr(self.instance, name, None)
            if not callable(function):
                owner = type(self.instance).__name__
                return _failure(BAD_IMPLEMENTATION, f'Method "{name}" not found in class "{owner}"')
            method = self._methods[name] = _Method(function)
        try:
            args, kwargs = codec.decode_arguments(
                request.methodArguments, request.methodKwArguments
            )
        except codec.DecodingError as error:
            return _failure(INVALID_ARGUMENT, f"arguments: {error}")
        accepted = method.accepted(len(args), kwargs)
        if len(accepted) != len(kwargs):
            self._report_dropped(name, kwargs.keys() - accepted.keys())
        try:
            result = method.function(*args, **accepted)
        except Exception as error:  # any model failure is reported, not fatal
            logger.warning("%s raised %s", name, _describe(error), exc_info=logger.isEnabledFor(10))
            return _failure(MODEL_FAILED, f"The model raised an exception: {_describe(error)}")
        if result is None:
            return _SUCCESS_CALL_EMPTY
        try:
            kind, data = codec.encode(result)
        except codec.EncodingError as error:
            return _failure(MODEL_FAILED, f"The model returned an unencodable result: {error}")
        if len(data) + _RESPONSE_OVERHEAD > self.max_message_bytes:
            return _failure(
                MODEL_FAILED,
                f"The model's result is {len(data)} bytes, over the "
                f"{self.max_message_bytes} bytes message limit",
            )
        return success_response(kind, data)

    def _report_dropped(self, method: str, dropped: set[str]) -> None:
        key = (method, tuple(sorted(dropped)))
        if key not in self._dropped_reported and len(self._dropped_reported) < 100:
            self._dropped_reported.add(key)
            logger.warning("%s does not accept %s: dropped", method, ", ".join(key[1]))

    # -- Rest ----------------------------------------------------------------------------

    def rest(self, payload: bytes) -> bytes:
        """Forget the instance (the next Setup creates a new one)."""
        had_instance = self.instance is not None
        self.instance = None
        self._methods.clear()
        message = "Instance successfully reset" if had_instance else "No instance exists to reset"
        response = dynamic_subclass_pb2.RestResponse(status=_Status(code=SUCCESS, message=message))
        return response.SerializeToString()


def _failure(code: str, message: str) -> bytes:
    return _CallResponse(status=_Status(code=code, message=message)).SerializeToString()


def _resolve_class(full_name: str) -> type:
    module_name, _, class_name = full_name.rpartition(".")
    module = importlib.import_module(module_name)
    found = getattr(module, class_name, None)
    if not inspect.isclass(found):
        raise ImportError(f"{module_name} has no class {class_name}")
    return found
