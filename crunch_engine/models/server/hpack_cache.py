"""HPACK header-block decoding with a cache for blocks that are provably context-free.

A header block is decoded against the connection's dynamic table, and some of its
representations change that table. A block whose representations are only static-table
indexed fields and literals *without* indexing / never indexed (with a literal or
static-table name) neither reads nor writes the dynamic table: its decoded headers are a
function of its bytes alone, and decoding it leaves the decoder untouched. Such blocks
(our fast client always sends them; its requests repeat byte for byte) are cached by
their bytes, process-wide. Every other block goes through ``hpack.Decoder`` as usual, so
the decoder's table stays in sync with the peer's encoder.
"""

from __future__ import annotations

import logging

import hpack
from hpack.exceptions import HPACKError

STATIC_TABLE_LENGTH = 61
CACHE_LIMIT = 512

# hpack logs every header it decodes at DEBUG: switch it off.
logging.getLogger("hpack").disabled = True

_cache: dict[bytes, dict[bytes, bytes]] = {}


class HeaderBlockError(ValueError):
    """An undecodable header block (a COMPRESSION_ERROR of the connection)."""


def _read_int(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = block[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(block):
            raise IndexError("truncated integer")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 35:
            raise IndexError("integer too long")


def _skip_string(block: bytes, pos: int) -> int:
    length, pos = _read_int(block, pos, 7)
    pos += length
    if pos > len(block):
        raise IndexError("truncated string")
    return pos


def is_context_free(block: bytes) -> bool:
    """True when decoding ``block`` neither uses nor changes the dynamic table."""
    pos = 0
    try:
        while pos < len(block):
            first = block[pos]
            if first & 0x80:  # indexed field: only static entries are context-free
                index, pos = _read_int(block, pos, 7)
                if index == 0 or index > STATIC_TABLE_LENGTH:
                    return False
            elif first & 0xE0 == 0x00 or first & 0xF0 == 0x10:
                # literal without indexing (0000) / never indexed (0001), 4-bit name index
                index, pos = _read_int(block, pos, 4)
                if index > STATIC_TABLE_LENGTH:
                    return False
                if index == 0:
                    pos = _skip_string(block, pos)
                pos = _skip_string(block, pos)
            else:  # incremental indexing (01) or a table size update (001)
                return False
    except IndexError:
        return False
    return pos == len(block)


class HeaderBlockDecoder:
    """One connection's decoder: cached context-free blocks, ``hpack`` for the rest."""

    __slots__ = ("_decoder",)

    def __init__(self, max_header_list_size: int = 65536) -> None:
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = max_header_list_size

    def decode(self, block: bytes) -> dict[bytes, bytes]:
        """The headers as a dict (read-only: it may be shared); raises HeaderBlockError."""
        cached = _cache.get(block)
        if cached is not None:
            return cached
        try:
            headers = dict(self._decoder.decode(block, raw=True))
        except (HPACKError, ValueError, IndexError) as error:
            raise HeaderBlockError(str(error)) from error
        if is_context_free(block):
            if len(_cache) >= CACHE_LIMIT:
                _cache.clear()
            _cache[block] = headers  # type: ignore[assignment]
        return headers  # type: ignore[return-value]
