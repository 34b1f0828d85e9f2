"""OB error bodies (openbanking/obcodes.py): every embedded code is a row of the official
OB_Internal_Codeset.csv, and the bodies built from them are valid OBErrorResponse1s."""

from __future__ import annotations

import csv

import pytest

from strongroom.core.errors import CORE_ERRORS, ErrorCatalogue
from strongroom.openbanking import obcodes as ob
from strongroom.openbanking.model_errors import OPENBANKING_MODEL_ERRORS
from tests.support import ob_spec

# The CSV's error codes are OBExternalStatusReason1Code rows; its columns (second header row):
# Code Set, Code Value, Code Name, Code Definition, HTTP Status Category, Description.
CODE_SET = "OBExternalStatusReason1Code"


def _csv_rows() -> dict[str, dict[str, str]]:
    path = ob_spec.need(ob_spec.CODESET_CSV)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[1]
    assert header[:5] == [
        "Code Set",
        "Code Value",
        "Code Name",
        "Code Definition",
        "HTTP Status Category",
    ]
    return {
        row[1]: dict(zip(header, row, strict=False))
        for row in rows[2:]
        if row and row[0].strip() == CODE_SET
    }


def test_every_embedded_code_is_a_row_of_the_code_set() -> None:
    rows = _csv_rows()
    for code in ob.ALL_CODES:
        row = rows.get(code.code)
        assert row is not None, f"{code.code} is not in OB_Internal_Codeset.csv"
        assert row["Code Name"] == code.name, code.code
        assert row["HTTP Status Category"] == code.status_category, code.code


def test_the_embedded_codes_are_all_of_the_code_sets_uk_obie_error_codes() -> None:
    rows = _csv_rows()
    named = {value for value, row in rows.items() if row["Code Name"].startswith("UK.OBIE.")}
    with_status = {value for value, row in rows.items() if row["HTTP Status Category"]}
    assert {c.code for c in ob.ALL_CODES} == with_status == named - {"U041", "U042"}


def test_an_error_body_is_a_valid_ob_error_response_in_each_document() -> None:
    body = ob.error_body(
        400,
        [
            ob.ObError(ob.FIELD_INVALID, "must be 10.50 or so", path="Data.Amount"),
            ob.ObError(ob.HEADER_MISSING, "x-fapi-interaction-id is missing", url="https://x/y"),
        ],
        error_id="2b5f9b4e-3f0c-4f5e-9d55-2d9a1c1e0f11",
    )
    assert body == {
        "Code": "400 BadRequest",
        "Id": "2b5f9b4e-3f0c-4f5e-9d55-2d9a1c1e0f11",
        "Message": "must be 10.50 or so",
        "Errors": [
            {"ErrorCode": "U002", "Message": "must be 10.50 or so", "Path": "Data.Amount"},
            {
                "ErrorCode": "U007",
                "Message": "x-fapi-interaction-id is missing",
                "Url": "https://x/y",
            },
        ],
    }
    for spec in ("account-info", "payment-initiation", "confirmation-funds"):
        ob_spec.validate_schema(spec, "OBErrorResponse1", body)


def test_long_messages_are_clipped_to_obs_bound() -> None:
    body = ob.error_body(500, [ob.ObError(ob.UNEXPECTED_ERROR, "x" * 600, path="p" * 600)])
    (entry,) = body["Errors"]
    assert len(entry["Message"]) == len(entry["Path"]) == len(body["Message"]) == 500
    assert body["Code"] == "500 InternalServerError"
    ob_spec.validate_schema("account-info", "OBErrorResponse1", body)


def test_each_model_error_answers_an_ob_code() -> None:
    ErrorCatalogue(CORE_ERRORS, OPENBANKING_MODEL_ERRORS)  # no code declared twice, differently
    for error in OPENBANKING_MODEL_ERRORS:
        assert error.code in ob.OB_CODE_BY_ERROR, error.code
    assert ob.ob_code_for("consent_state", 409) is ob.RESOURCE_INVALID_CONSENT_STATUS
    assert ob.ob_code_for("some_other_400", 400) is ob.FIELD_INVALID
    assert ob.ob_code_for("overloaded", 503) is ob.UNEXPECTED_ERROR
    made = ob.error_for("unsupported_ob_currency", 400, "no such currency", "Data.X.Currency")
    assert made.to_ob() == {
        "ErrorCode": "U023",
        "Message": "no such currency",
        "Path": "Data.X.Currency",
    }


def test_a_wrong_error_body_is_refused_by_the_schema() -> None:
    with pytest.raises(ob_spec.ResponseInvalid, match="Errors"):
        ob_spec.validate_schema("account-info", "OBErrorResponse1", {"Code": "400", "Errors": []})
    with pytest.raises(ob_spec.ResponseInvalid, match="ErrorCode"):
        ob_spec.validate_schema(
            "account-info",
            "OBErrorResponse1",
            {"Errors": [{"ErrorCode": "UK.OBIE.Field.Invalid", "Message": "m"}]},
        )
