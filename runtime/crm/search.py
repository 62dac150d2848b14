"""Search in a list: every word of the query must be in one of the list's search fields, and each
word is found through an index, on SQLite and PostgreSQL alike.

- Phone fields are searched by prefix (people type the start of a number): a word of digits is
  the range `phone >= '138' AND phone < '139'` on the phone's btree (digits as validation.py
  stores them, separators removed).
- Text and e-mail fields are searched by contains, case-insensitive for A-Z (and only A-Z, on
  both databases, so that a list finds the same rows on either).  The index is a trigram table
  per entity, `crm_search__<entity>` (gram, record_id) with its primary key on (gram, record_id),
  holding every trigram of every search field of the record, lower-cased, each value padded at
  its end with two \\x01 so that every character starts one trigram.  A word of 3 or more
  characters looks its trigrams up (intersected); a word of 1 or 2 characters
  is a *prefix range* of the trigrams (`gram >= '伟' AND gram < '传'`), which finds every record
  holding it.  The candidates are then checked with LIKE, so the result is exactly a
  contains-search.
- Each word's candidates are one `id IN (... UNION ALL ...)` subquery, never one OR over
  columns, which SQLite cannot serve from indexes.

Why our own trigram table: Chinese names are 2-3 characters, so 1- and 2-character searches are
the common case, and the well-kept indexes need 3: SQLite's FTS5 `trigram` tokenizer and
PostgreSQL's pg_trgm both read their whole index for a shorter pattern (pg_bigm, which would do
2, is not among the extensions here).  One table of trigrams serves every length, is the same on
both databases, and with the end padding it holds one row per character (unigram and bigram
tables would triple it).  It is kept up to date by database triggers, so every writer (the
record store, CSV imports, migrations, a DBA's UPDATE) keeps it right without knowing it exists.
The cost: about one index row per character of the search fields, and a trigger on each write.

Common words: a one-character word can be in a large share of the records (a common surname).
Reading all of them to sort is slow, but then the first page is found by walking the list's sort
order and checking each row.  So the lookups are read first, each cut off after `COMMON` ids (one
query): when some word's lookups are complete, its ids are the candidates, read by primary key
and sorted (at most COMMON rows); when every word is common, `listing` scans at most `SCAN` rows
of the sort order and falls back to the lookups in SQL when that stretch does not fill the page.
A word of 4 or more characters looks up its first and last trigram, intersected.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (ARRAY, Column, Integer, MetaData, String, Table, and_, any_, cast, func, intersect, literal, or_, select,
                        text, union_all)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from compiler import ir
from runtime.crm.tables import table_name
from runtime.crm.validation import PHONE_SEPARATORS

PAD = "\x01\x01"
COMMON = 5000       # a word with at least this many candidates is common
SCAN = 20000        # rows of the sort order read for common words before using the candidates
TEXT_TYPES = ("text", "email")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(value: str) -> str:
    """Case folding as both databases do it here: A-Z only (SQLite's lower() and LIKE)."""
    return value.translate(ASCII_LOWER)


def trigrams(value: str) -> set[str]:
    """The index rows of one value (what the triggers compute in SQL)."""
    padded = fold(value) + PAD if value else ""
    return {padded[i:i + 3] for i in range(len(value))}


def grams_table_name(entity: str) -> str:
    return "crm_search__" + table_name(entity)[len("crm_"):]


def grams_table(entity: str) -> Table:
    return Table(grams_table_name(entity), MetaData(), Column("gram", String(3)), Column("record_id", Integer))


def text_fields(bundle: ir.Bundle, entity: str) -> list[str]:
    """The entity's fields that some list searches by contains (the trigram table's fields)."""
    types = {f.name: f.type for f in bundle.entities[entity].fields}
    return sorted({name for view in bundle.lists.values() if view.entity == entity
                   for name in view.search if types.get(name) in TEXT_TYPES})


# ------------------------------------------------------------------ the query side

@dataclass
class Search:
    matches: ColumnElement    # exactly the rows the search finds (read row by row)
    narrowed: ColumnElement   # the same rows, found from the indexes
    common: bool              # so many rows match that walking the sort order finds a page fast
    fields: list[str]         # the columns `matches` reads


@dataclass
class _Word:
    matches: ColumnElement
    candidates: object        # a select of the ids the word can be in (from indexes), or None


def plan(connection: Connection, bundle: ir.Bundle, entity: str, view: ir.ListView, table: Table,
         query: str) -> Search | None:
    """The search for `query` in `view`, or None for an empty query.

    The indexes are read first, each lookup stopping after COMMON ids: a word whose lookups end
    sooner has its candidates as a list of ids, which the page then reads by primary key (a plan
    no optimizer can get wrong); when every word is common, the page walks the sort order and
    falls back to the lookups in SQL."""
    words = list(dict.fromkeys(query.split()))
    if not words:
        return None
    types = {f.name: f.type for f in bundle.entities[entity].fields}
    fields = [n for n in view.search if n in table.c and types.get(n) in (*TEXT_TYPES, "phone")]
    grams = grams_table(entity)
    parsed = [_word(connection, word, fields, types, table, grams) for word in words]
    matches = and_(*[w.matches for w in parsed])
    looked_up = [w for w in parsed if w.candidates is not None]
    if len(looked_up) < len(parsed):  # a word no field can hold
        return Search(matches, matches, False, fields)
    known = None
    for ids in _ids(connection, [w.candidates for w in looked_up]):
        if ids is not None:
            known = ids if known is None else known & ids
    if known is not None:
        return Search(matches, and_(table.c.id.in_(sorted(known)), matches), False, fields)
    return Search(matches, and_(_among(connection, table, looked_up[0].candidates), matches), True, fields)


def _among(connection: Connection, table: Table, candidates) -> ColumnElement:
    """`id` among a common word's many candidates, read from the candidates.  PostgreSQL estimates
    a contains-LIKE so badly that with a plain IN it reads the whole table; the candidates as
    one array computed first (an InitPlan) make it look each one up by primary key."""
    if connection.dialect.name != "postgresql":
        return table.c.id.in_(candidates)
    listed = candidates.subquery()
    ids = select(func.array_agg(list(listed.c)[0])).scalar_subquery()
    return table.c.id == any_(cast(ids, ARRAY(Integer)))  # the cast keeps it an array, not ANY (subquery)


def _word(connection: Connection, word: str, fields: list[str], types: dict, table: Table, grams: Table) -> _Word:
    digits = PHONE_SEPARATORS.sub("", word)
    is_number = digits.lstrip("+").isdigit() and digits.count("+") <= 1 and not digits.endswith("+")
    options, probes = [], []
    for name in fields:
        if types[name] == "phone" and is_number:
            in_range = and_(table.c[name] >= digits, table.c[name] < next_prefix(digits))
            options.append(in_range)
            probes.append(select(table.c.id).where(in_range))
    folded = fold(word)
    texts = [n for n in fields if types[n] != "phone"]
    for name in texts:
        options.append(_contains(connection, table.c[name], folded))
    if texts:
        if len(folded) < 3:
            probes.append(select(grams.c.record_id).where(grams.c.gram >= folded, grams.c.gram < next_prefix(folded)))
        else:  # the records holding its first and last trigram (or another, when they are the same)
            every = list(dict.fromkeys([folded[:3], folded[-3:], *(folded[i:i + 3] for i in range(len(folded) - 2))]))
            chosen = every[:2]
            lookups = [select(grams.c.record_id).where(grams.c.gram == g) for g in chosen]
            # a compound inside a compound must be a subquery on SQLite
            probes.append(lookups[0] if len(lookups) == 1 else select(intersect(*lookups).subquery().c.record_id))
    candidates = None if not probes else probes[0] if len(probes) == 1 else union_all(*probes)
    return _Word(or_(*options) if options else literal(False), candidates)


def _contains(connection: Connection, column, folded: str) -> ColumnElement:
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if connection.dialect.name == "postgresql":  # lower() under "C" folds A-Z only, as SQLite's LIKE
        return func.lower(column.collate("C")).like(pattern, escape="\\")
    return column.like(pattern, escape="\\")


def _ids(connection: Connection, candidates: list) -> list[set[int] | None]:
    """Each word's candidate ids, or None where there are more than COMMON: one query for all."""
    parts = []
    for number, select_ids in enumerate(candidates):
        some = select_ids.limit(COMMON + 1).subquery()
        parts.append(select(literal(number).label("word"), list(some.c)[0].label("id")))
    found: list[set[int]] = [set() for _ in candidates]
    read = [0] * len(candidates)  # rows, not ids: a prefix range repeats a record once per trigram
    for number, record_id in connection.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
        found[number].add(record_id)
        read[number] += 1
    return [ids if n <= COMMON else None for ids, n in zip(found, read)]


def next_prefix(prefix: str) -> str:
    """The smallest text after every text that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# ------------------------------------------------------------------ the index and its triggers

def install(connection: Connection, bundle: ir.Bundle) -> list[str]:
    """Makes each entity's trigram table and triggers match the lists' search fields, filling the
    table from the records when it is new or its fields changed; drops those no list needs.
    Returns what it did, in plain words."""
    postgres = connection.dialect.name == "postgresql"
    done = []
    _state_table(connection)
    have = dict(connection.execute(text("SELECT table_name, fields FROM crm_search_fields")).all())
    wanted = {grams_table_name(e): (e, text_fields(bundle, e)) for e in bundle.entities}
    wanted = {name: (e, fields) for name, (e, fields) in wanted.items() if fields}
    if postgres:
        connection.execute(text(PG_GRAMS_FUNCTION))
        _drop_old_trigram_indexes(connection, bundle)
    for name in sorted(set(have) - set(wanted)):
        drop(connection, name)
        done.append(f"drop search index {name}, which no list needs any more")
    for name, (entity, fields) in sorted(wanted.items()):
        listed = ",".join(fields)
        fresh = have.get(name) != listed
        if fresh:
            drop(connection, name)
            _create_and_fill(connection, entity, fields)
            connection.execute(text("INSERT INTO crm_search_fields (table_name, fields) VALUES (:t, :f)"),
                               {"t": name, "f": listed})
            done.append(f"drop search index {name} and make it again on ({', '.join(fields)})" if name in have
                        else f"create search index {name} on {table_name(entity)} ({', '.join(fields)})")
        if fresh or not _has_triggers(connection, entity):
            create_triggers(connection, entity, fields)
    return done


def rebuild(connection: Connection, entity: str, fields: list[str]) -> None:
    """Fills an entity's trigram table again from its records (after a migration changed them)."""
    connection.execute(text(f'DELETE FROM "{grams_table_name(entity)}"'))
    connection.execute(text(_fill_sql(connection, entity, fields)))


def drop(connection: Connection, name: str) -> None:
    """An entity's trigram table with its triggers."""
    entity_table = "crm_" + name[len("crm_search__"):]
    drop_triggers(connection, name, entity_table)
    connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    connection.execute(text("DELETE FROM crm_search_fields WHERE table_name = :t"), {"t": name})


def drop_all_triggers(connection: Connection) -> None:
    """Every search trigger (a migration reshaping tables; `install` makes them again)."""
    _state_table(connection)
    for (name,) in connection.execute(text("SELECT table_name FROM crm_search_fields")).all():
        drop_triggers(connection, name, "crm_" + name[len("crm_search__"):])


def _state_table(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE IF NOT EXISTS crm_search_fields "
                            "(table_name VARCHAR(100) PRIMARY KEY, fields TEXT NOT NULL)"))


def _create_and_fill(connection: Connection, entity: str, fields: list[str]) -> None:
    """A new trigram table, filled in bulk (sorted, and keyed after the fill on PostgreSQL)."""
    name = grams_table_name(entity)
    if connection.dialect.name == "postgresql":
        connection.execute(text(f'CREATE TABLE "{name}" (gram VARCHAR(3) COLLATE "C" NOT NULL, '
                                f'record_id INTEGER NOT NULL)'))
        connection.execute(text(_fill_sql(connection, entity, fields)))
        connection.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_pkey" PRIMARY KEY (gram, record_id)'))
        connection.execute(text(f'ANALYZE "{name}"'))
    else:
        connection.execute(text(f'CREATE TABLE "{name}" (gram TEXT NOT NULL, record_id INTEGER NOT NULL, '
                                f'PRIMARY KEY (gram, record_id)) WITHOUT ROWID'))
        connection.execute(text(_fill_sql(connection, entity, fields)))


def _fill_sql(connection: Connection, entity: str, fields: list[str]) -> str:
    table, name = table_name(entity), grams_table_name(entity)
    if connection.dialect.name == "postgresql":  # set-based: far faster than the function per row
        values = " UNION ALL ".join(f'SELECT id, lower("{f}" COLLATE "C") || E\'\\x01\\x01\' AS s FROM "{table}" '
                                    f'WHERE "{f}" <> \'\'' for f in fields)
        return (f'INSERT INTO "{name}" (gram, record_id) SELECT DISTINCT substr(v.s, i, 3), v.id '
                f'FROM ({values}) AS v, generate_series(1, length(v.s) - 2) AS i')
    values = " UNION ALL ".join(f'SELECT id, lower("{f}") AS s FROM "{table}"' for f in fields)
    return (f'INSERT OR IGNORE INTO "{name}" (gram, record_id) SELECT {_SQLITE_GRAM}, v.id '
            f'FROM ({values}) AS v, {_SQLITE_POSITIONS} AS p WHERE v.s <> \'\' ORDER BY 1, 2')


# SQLite: the positions 0..length-1 of a value, from built-ins only (triggers cannot use WITH):
# a JSON array of `length` zeros, whose json_each keys are the positions.
_SQLITE_POSITIONS = "json_each('[' || substr(replace(hex(zeroblob(length(v.s))), '00', ',0'), 2) || ']')"
_SQLITE_GRAM = "substr(v.s || char(1, 1), p.key + 1, 3)"

PG_GRAMS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION crm_search_grams(parts text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(s, i, 3)), '{}')
    FROM (SELECT lower(p COLLATE "C") || E'\x01\x01' AS s FROM unnest(parts) AS p WHERE p <> '') AS v,
         generate_series(1, length(s) - 2) AS i
$$
"""


def _pg_array(row: str, fields: list[str]) -> str:
    return "ARRAY[" + ", ".join(f'{row}."{f}"::text' for f in fields) + "]"


def create_triggers(connection: Connection, entity: str, fields: list[str]) -> None:
    """Triggers that keep the trigram table right on every insert, update and delete."""
    table, name = table_name(entity), grams_table_name(entity)
    drop_triggers(connection, name, table)
    columns = ", ".join(f'"{f}"' for f in fields)
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"""
CREATE OR REPLACE FUNCTION "{name}_sync"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM "{name}" WHERE record_id = OLD.id
            AND gram = ANY (crm_search_grams({_pg_array("OLD", fields)})::varchar[]);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO "{name}" (gram, record_id)
            SELECT g, NEW.id FROM unnest(crm_search_grams({_pg_array("NEW", fields)})) AS g
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$"""))
        connection.execute(text(f'CREATE TRIGGER "{name}" AFTER INSERT OR DELETE OR UPDATE OF {columns} '
                                f'ON "{table}" FOR EACH ROW EXECUTE FUNCTION "{name}_sync"()'))
        return
    def grams_of(row: str) -> str:
        values = " UNION ALL ".join(f'SELECT lower({row}."{f}") AS s' for f in fields)
        return f"SELECT DISTINCT {_SQLITE_GRAM} FROM ({values}) AS v, {_SQLITE_POSITIONS} AS p WHERE v.s <> ''"
    add = f'INSERT OR IGNORE INTO "{name}" (gram, record_id) SELECT g.*, new.id FROM ({grams_of("new")}) AS g;'
    remove = f'DELETE FROM "{name}" WHERE record_id = old.id AND gram IN ({grams_of("old")});'
    for event, body in [("INSERT", add), ("DELETE", remove), (f"UPDATE OF {columns}", remove + "\n" + add)]:
        connection.execute(text(f'CREATE TRIGGER "{name}_{event.split()[0].lower()}" AFTER {event} ON "{table}" '
                                f'FOR EACH ROW BEGIN\n{body}\nEND'))


def drop_triggers(connection: Connection, name: str, table: str) -> None:
    if connection.dialect.name == "postgresql":
        if connection.execute(text("SELECT to_regclass(:t)"), {"t": f'"{table}"'}).scalar() is not None:
            connection.execute(text(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"'))
        connection.execute(text(f'DROP FUNCTION IF EXISTS "{name}_sync"()'))
        return
    for event in ("insert", "delete", "update"):
        connection.execute(text(f'DROP TRIGGER IF EXISTS "{name}_{event}"'))


def _has_triggers(connection: Connection, entity: str) -> bool:
    name = grams_table_name(entity)
    if connection.dialect.name == "postgresql":
        found = "SELECT count(*) FROM pg_trigger WHERE tgname = :n AND tgrelid = to_regclass(:t)"
        return connection.execute(text(found), {"n": name, "t": f'"{table_name(entity)}"'}).scalar() == 1
    found = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (:i, :d, :u) AND tbl_name = :t"
    names = {"i": f"{name}_insert", "d": f"{name}_delete", "u": f"{name}_update"}
    return connection.execute(text(found), {**names, "t": table_name(entity)}).scalar() == 3


def _drop_old_trigram_indexes(connection: Connection, bundle: ir.Bundle) -> None:
    """The pg_trgm indexes earlier versions made; the trigram tables replace them."""
    for entity in bundle.entities:
        for field in bundle.entities[entity].fields:
            connection.execute(text(f'DROP INDEX IF EXISTS "ix_{table_name(entity)}_{field.name}_trgm"'))
