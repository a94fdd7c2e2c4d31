"""Older finished trial records, sealed into compressed chunks so a sweep's status stays small.

The status is the engine's only memory across operator restarts, so it must hold every
trial exactly (the engine rebuilt from it has to decide as the engine that wrote it did),
and it must fit one etcd request (1.5 MiB) at the largest budget.maxTrials (10,000). Plain
records cost ~210 bytes a trial (params at full float precision, ~6 intermediate values):
2 MiB at 10,000 trials. Dropping intermediate values would change what the pruners read
(the median pruner compares against finished trials at any step, ASHA at every rung), so
nothing is dropped; instead the history is stored in two parts:

- ``status.history``: the records of the newest trials, plain JSON, as before;
- ``status.archive``: the records of trials ``CHUNK * k`` to ``CHUNK * (k + 1) - 1``, once all
  of them have finished, as one chunk: the same record JSON, xz-compressed and base64-encoded.
  4 float/int parameters and 8 intermediate values come to ~50 bytes a trial (0.5 MiB at
  10,000 trials).

A finished record never changes, so a sealed chunk is never rewritten. Read a chunk by hand:
``kubectl get hps NAME -o jsonpath='{.status.archive[0].data}' | base64 -d | xz -d``.
"""

import base64
import json
import lzma
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Trials per sealed chunk: small enough that the plain part (the open chunk, plus one with a
# straggler still running) stays ~100 KiB, large enough for compression to pay.
CHUNK = 250
FINISHED = frozenset({"Succeeded", "Pruned", "Failed"})
ENCODING = "json+xz+base64"


class ArchiveError(ValueError):
    """A chunk that does not decode to the trials it claims; the message names it."""


class ArchiveChunk(BaseModel):
    """Trials first..last (all finished), as compressed record JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    first: int = Field(description="Number of the chunk's first trial.")
    last: int = Field(description="Number of the chunk's last trial.")
    count: int = Field(description="Records in the chunk (fewer than last-first+1 after gaps).")
    encoding: str = Field(default=ENCODING, description="How data is encoded.")
    data: str = Field(
        description="base64 of the xz-compressed JSON list of the chunk's history records."
    )


def seal(records: Sequence[dict[str, object]], first: int) -> ArchiveChunk:
    """One chunk from the stored (short-key) forms of its records."""
    text = json.dumps(list(records), separators=(",", ":"), sort_keys=True).encode()
    packed = lzma.compress(text, preset=9 | lzma.PRESET_EXTREME)
    return ArchiveChunk(
        first=first,
        last=first + CHUNK - 1,
        count=len(records),
        data=base64.b64encode(packed).decode(),
    )


def unseal(chunk: ArchiveChunk) -> list[dict[str, object]]:
    """The stored forms of a chunk's records; ArchiveError if it is not what it claims."""
    where = f"archive chunk {chunk.first}-{chunk.last}"
    if chunk.encoding != ENCODING:
        raise ArchiveError(f"{where}: unknown encoding {chunk.encoding!r}")
    try:
        records = json.loads(lzma.decompress(base64.b64decode(chunk.data, validate=True)))
    except (ValueError, lzma.LZMAError) as error:
        raise ArchiveError(f"{where}: data does not decode: {error}") from None
    if not isinstance(records, list) or len(records) != chunk.count:
        raise ArchiveError(f"{where}: expected {chunk.count} records")
    for record in records:
        number = record.get("n") if isinstance(record, dict) else None
        if not isinstance(number, int) or not chunk.first <= number <= chunk.last:
            raise ArchiveError(f"{where}: holds a record numbered {number!r}")
    return records


def sealable(records: Iterable[dict[str, object]]) -> dict[int, list[dict[str, object]]]:
    """Stored records by the chunk index they can be sealed into now.

    Chunk k is sealable when each of its records is finished and a later trial exists, so
    no new trial can still be numbered inside it.
    """
    by_chunk: dict[int, list[dict[str, object]]] = {}
    top = -1
    for record in records:
        number = int(record["n"])  # type: ignore[call-overload]
        by_chunk.setdefault(number // CHUNK, []).append(record)
        top = max(top, number)
    return {
        k: sorted(rs, key=lambda r: int(r["n"]))  # type: ignore[call-overload]
        for k, rs in by_chunk.items()
        if (k + 1) * CHUNK <= top and all(r.get("s") in FINISHED for r in rs)
    }
