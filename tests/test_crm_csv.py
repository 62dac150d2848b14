"""CSV export and import of records on SQLite and PostgreSQL: a file with any bad row changes
nothing, and the report names each bad row and field."""
from __future__ import annotations

import csv
import io

import pytest

from runtime.crm.csv_io import export_csv, import_csv
from runtime.crm.records import Invalid, RecordStore
from runtime.crm.users import SYSTEM, users_from_bundle
from test_crm_records import bundle, engine  # noqa: F401 - the module's database, SQLite and PostgreSQL


@pytest.fixture(scope="module")
def store(engine, bundle):  # noqa: F811
    store = RecordStore(engine, bundle)
    store.create_tables()
    return store


def count(store) -> int:
    return len(store.list(SYSTEM, "Customer").rows)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_import_by_labels_then_export_by_names_and_labels(store):
    report = import_csv(store, SYSTEM, "Customer",
                        "\ufeff姓名,手机号码,客户等级,话费余额\n"
                        "甲,13600000001,白金,12.5\n乙,136-0000-0002,gold,\n\n")
    assert (report.created, report.updated, report.errors, report.applied) == (2, 0, {}, True)
    exported = rows(export_csv(store, SYSTEM, "Customer"))
    assert exported[0] == ["id", "name", "phone", "tier", "status", "plan", "balance", "manager"]
    assert exported[1][1:4] == ["甲", "13600000001", "platinum"] and exported[1][6] == "12.50"
    assert exported[2][2] == "13600000002" and exported[2][6] == ""
    labelled = rows(export_csv(store, SYSTEM, "Customer", all_fields=True, labels=True))
    assert labelled[0][:4] == ["id", "姓名", "手机号码", "身份证号码"] and len(labelled[0]) == 1 + 16
    assert store.history(SYSTEM, "Customer", int(exported[1][0]))[0].action == "create"


def test_a_file_with_a_bad_row_changes_nothing_and_says_where(store):
    before = count(store)
    text = ("name,phone,tier,monthly_spend\n"
            "丙,13600000003,star,100\n"
            ",12,diamond,-5\n"
            "丁,13600000001,general,\n")
    report = import_csv(store, SYSTEM, "Customer", text)
    assert report.applied is False and (report.created, report.updated) == (0, 0)
    assert report.errors[3] == {"name": "姓名 is required",
                                "phone": "手机号码 must be a phone number of 5 to 20 digits, optionally starting with +",
                                "tier": "客户等级 must be one of 白金 (platinum), 金卡 (gold), 星级 (star), 普通 (general)",
                                "monthly_spend": "月均消费 must be between 0 and 100000"}
    assert report.errors[4]["phone"].startswith("another Customer already has this 手机号码 (id ")
    assert 2 not in report.errors and count(store) == before


def test_rows_that_repeat_a_unique_value_within_the_file_are_caught(store):
    report = import_csv(store, SYSTEM, "Customer", "name,phone\n戊,13600000009\n己,13600000009\n")
    assert list(report.errors) == [3] and count(store) == len(store.list(SYSTEM, "Customer").rows)
    assert store.lookup("Customer", {"phone": "13600000009"}, None, ()) is None


def test_import_updates_by_id_or_by_a_unique_field(store):
    first = store.lookup("Customer", {"phone": "13600000001"}, None, ())
    by_id = import_csv(store, SYSTEM, "Customer", f"id,plan\n{first['id']},5G 畅享\n")
    assert (by_id.created, by_id.updated) == (0, 1)
    by_phone = import_csv(store, SYSTEM, "Customer", "phone,plan,tier\n13600000001,4G,金卡\n13600000077,x,star\n",
                          key="phone")
    assert by_phone.errors == {3: {"name": "姓名 is required"}}  # a new record needs its required fields
    by_phone = import_csv(store, SYSTEM, "Customer", "phone,plan,tier\n13600000001,4G,金卡\n", key="phone")
    assert (by_phone.created, by_phone.updated) == (0, 1)
    changed = store.get(SYSTEM, "Customer", first["id"])
    assert (changed["plan"], changed["tier"]) == ("4G", "gold")
    assert [e.after for e in store.history(SYSTEM, "Customer", first["id"]) if e.field == "plan"] == ["5G 畅享", "4G"]


@pytest.mark.parametrize("text, errors", [
    ("", {1: {"file": "the file is empty; the first row must name the columns"}}),
    ("name,nickname\n甲,x\n", {1: {"nickname": "Customer has no field 'nickname'"}}),
    ("name,姓名\n甲,乙\n", {1: {"姓名": "the column for name is given twice"}}),
    ("id,plan\n999999,5G\n", {2: {"id": "there is no Customer 999999 to change; leave id empty for a new record"}}),
    ("name,phone\n甲,13600000011,extra\n", {2: {"row": "this row has 3 cells; the header names 2 columns"}}),
])
def test_a_malformed_file_is_reported_by_row(store, text, errors):
    assert import_csv(store, SYSTEM, "Customer", text).errors == errors


def test_matching_by_a_field_that_is_not_unique_is_refused(store):
    with pytest.raises(Invalid) as refused:
        import_csv(store, SYSTEM, "Customer", "name\n甲\n", key="name")
    assert refused.value.errors == {"key": "rows can be matched by id, phone, not by 'name'"}


def test_an_import_by_someone_who_may_not_write_is_refused_per_row(store, bundle):  # noqa: F811
    qa = users_from_bundle(bundle)["sun_li"]
    report = import_csv(store, qa, "Customer", "name,phone\n庚,13600000021\n")
    assert report.errors[2]["row"].startswith("孙丽 (qa) may not create")
    assert store.lookup("Customer", {"phone": "13600000021"}, None, ()) is None
