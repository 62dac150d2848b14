"""Stage 6: the bundle as canonical JSON with a content hash.

The JSON is byte-identical for identical input: dictionaries are built in name order, the
pydantic field order is fixed, and the hash is the sha256 of the compact JSON of everything but
the hash itself.  pydantic's own (compiled) serializer writes both.
"""
from __future__ import annotations

import hashlib

from compiler import ir


def content_hash(bundle: ir.Bundle) -> str:
    compact = bundle.model_dump_json(exclude={"hash"})
    return "sha256:" + hashlib.sha256(compact.encode("utf-8")).hexdigest()


def seal(bundle: ir.Bundle) -> ir.Bundle:
    return bundle.model_copy(update={"hash": content_hash(bundle)})


def to_json(bundle: ir.Bundle) -> str:
    return bundle.model_dump_json(indent=1) + "\n"


def from_json(text: str) -> ir.Bundle:
    """Load a bundle and refuse one whose content does not match its hash."""
    bundle = ir.Bundle.model_validate_json(text)
    if bundle.hash != content_hash(bundle):
        raise ValueError("the bundle's content does not match its hash; compile it again")
    return bundle
