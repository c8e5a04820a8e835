"""Weights files from outside: a safetensors header is checked (length, offsets, dtypes, shapes) before use."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save

from tl_desktop.core.runs import check_safetensors


def _good() -> bytes:
    return save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.int64)},
                metadata={"tl_desktop": "{}"})


def _with_header(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def _parts(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8: 8 + n]), data[8 + n:]


def test_a_real_file_passes(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_good())
    header = check_safetensors(path)
    assert header["a"]["shape"] == [2, 3] and header["__metadata__"] == {"tl_desktop": "{}"}


def _bad_files() -> dict[str, bytes]:
    header, payload = _parts(_good())
    past_end = json.loads(json.dumps(header))
    past_end["b"]["data_offsets"][1] += 1000
    wrong_shape = json.loads(json.dumps(header))
    wrong_shape["a"]["shape"] = [3, 3]
    unknown = json.loads(json.dumps(header))
    unknown["a"]["dtype"] = "PYOBJECT"
    overlap = json.loads(json.dumps(header))
    later = max(("a", "b"), key=lambda k: header[k]["data_offsets"][0])
    span = header[later]["data_offsets"][1] - header[later]["data_offsets"][0]
    overlap[later]["data_offsets"] = [0, span]  # starts where the other one starts
    return {
        "empty": b"",
        "garbage header": struct.pack("<Q", 20) + b"\x00not json at all!!!\xff" + payload,
        "header length 2**62": struct.pack("<Q", 2 ** 62) + b"{}",
        "offsets past the end": _with_header(past_end, payload),
        "offsets that do not match the shape": _with_header(wrong_shape, payload),
        "unknown dtype": _with_header(unknown, payload),
        "overlapping tensors": _with_header(overlap, payload),
        "a list, not a table": _with_header([1, 2], b""),  # type: ignore[arg-type]
        "truncated payload": _good()[:-5],
    }


@pytest.mark.parametrize("case", sorted(_bad_files()))
def test_damaged_or_crafted_files_are_refused_in_one_line(tmp_path, case):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_bad_files()[case])
    with pytest.raises(ValueError) as info:
        check_safetensors(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
