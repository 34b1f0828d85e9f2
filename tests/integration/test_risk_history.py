"""`strongroom risk export`'s core (risk/history.py), on SQLite and PostgreSQL: the tenant's
risk events in time order over keyset pages (ties across a page's edge included), amounts in
major units and times in seconds exactly as the feature store feeds the engine, the label
delay, the `--since` warm-up, CSV and Parquet alike, no partial file on failure; and how
`risk train` tells a raw history from feature columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from strongroom.cli.risk_train import FeaturesFrom, _engine_mode
from strongroom.core import clock
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.risk import store
from strongroom.risk.backtest import read_raw_history
from strongroom.risk.featurestore import WARM_DAYS, event_of_row
from strongroom.risk.history import HistoryError, engine_features, export_history
from tests.support import schema

DAY_US = 86_400 * 1_000_000
NOW_US = 1_800_000_000 * 1_000_000


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    schema.upgrade(db_url)
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        yield engine
    finally:
        engine.dispose()


def _event(seq: int, tid: str, at_us: int, amount: int, scale: int, **kw: object) -> store.EventRow:
    return store.EventRow(
        tenant_id="ten_a",
        seq=seq,
        transfer_id=tid,
        at_us=at_us,
        amount=amount,
        scale=scale,
        customer_id=str(kw.get("customer", "cus_1")),
        payee=kw.get("payee", "ab" * 32),  # type: ignore[arg-type]
        channel=kw.get("channel", "card_present"),  # type: ignore[arg-type]
        device=None,
        ip=None,
    )


def _write(engine: Engine, rows: list[store.EventRow]) -> None:
    with UnitOfWork(engine) as uow:
        first = store.draw_seqs(uow, rows[0].tenant_id, len(rows))
        assert first == rows[0].seq
        store.insert_events(uow, rows)
        uow.commit()


def _label(engine: Engine, transfer_id: str, fraud: bool) -> None:
    with UnitOfWork(engine) as uow:
        assert store.label(uow, "ten_a", transfer_id, fraud, NOW_US) is not None
        uow.commit()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A folder of its own (the SQLite database lives in tmp_path)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def history(engine: Engine) -> list[store.EventRow]:
    """Seven payments: three of one microsecond (a tie), one in another scale, one to no payee,
    one 40 days old, one too recent to count as genuine unlabelled; another tenant's too."""
    t0 = NOW_US - 20 * DAY_US
    rows = [
        _event(1, "tr_1", t0, 1_234, 2),
        _event(2, "tr_2", t0 + DAY_US, 1, 2, customer="cus_2"),
        _event(3, "tr_3", t0 + DAY_US, 999_999, 2),
        _event(4, "tr_4", t0 + DAY_US, 7, 0, payee=None, channel=None),
        _event(5, "tr_5", t0 - 20 * DAY_US, 123_456_789, 8),
        _event(6, "tr_6", NOW_US - DAY_US, 50_00, 2),
        _event(7, "tr_7", t0 + 2 * DAY_US + 17, 3_14, 2),
    ]
    _write(engine, rows)
    _write(engine, [store.EventRow("ten_b", 1, "tr_b", t0, 1, 2, "cus_b", None, None, None, None)])
    _label(engine, "tr_3", True)
    _label(engine, "tr_6", True)
    _label(engine, "tr_7", False)
    return rows


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_export_is_the_events_in_time_order_as_the_engine_reads_them(
    engine: Engine, history: list[store.EventRow], out_dir: Path, suffix: str
) -> None:
    out = out_dir / f"h{suffix}"
    lines: list[str] = []
    summary = export_history(engine, "ten_a", out, now_us=NOW_US, chunk_rows=2, report=lines.append)
    assert lines[-1] == "7 payments written"
    assert (summary.rows, summary.frauds, summary.genuine, summary.unlabelled) == (7, 2, 5, 0)
    assert summary.first_time == clock.format_us(NOW_US - 40 * DAY_US)
    assert [p.name for p in out_dir.iterdir()] == [out.name]  # no partial file left

    read = read_raw_history(out)
    frame = read.frame
    assert read.label == "label"
    assert list(frame["id"]) == ["tr_5", "tr_1", "tr_2", "tr_3", "tr_4", "tr_7", "tr_6"]
    by_id = {r.transfer_id: r for r in history}
    for row in frame.to_dict(orient="records"):
        event = event_of_row(by_id[row["id"]])
        assert row["time"] == event.at_s  # the same float, bit for bit
        assert row["amount"] == event.amount
        assert row["customer"] == event.customer
        assert (None if pd.isna(row["payee"]) else row["payee"]) == event.payee
        assert (None if pd.isna(row["channel"]) else row["channel"]) == event.channel
        assert pd.isna(row["device"])
        assert pd.isna(row["ip"])
    assert frame.loc[frame["id"] == "tr_5", "amount"].item() == 1.23456789
    labels = dict(zip(frame["id"], frame["label"], strict=True))
    assert labels == {"tr_5": 0, "tr_1": 0, "tr_2": 0, "tr_3": 1, "tr_4": 0, "tr_7": 0, "tr_6": 1}


def test_recent_unlabelled_payments_are_blank_and_not_trained_on(
    engine: Engine, history: list[store.EventRow], out_dir: Path
) -> None:
    out = out_dir / "h.csv"
    summary = export_history(engine, "ten_a", out, now_us=NOW_US, label_delay_days=30)
    # Unlabelled within 30 days: tr_1, tr_2, tr_4; tr_5 is older; the rest are labelled.
    assert (summary.frauds, summary.genuine, summary.unlabelled) == (2, 2, 3)
    table = engine_features(out)
    assert list(table["id"]) == ["tr_5", "tr_3", "tr_7", "tr_6"]
    # The blank rows were replayed: tr_7's customer has paid tr_1, tr_3 and tr_4 (and tr_5,
    # 22 days before), so five payments in 30 days, tr_7 included.
    assert table.loc[table["id"] == "tr_7", "customer_nb_tx_30d"].item() == 5.0


def test_an_export_since_a_date_starts_with_an_unlabelled_warm_up(
    engine: Engine, history: list[store.EventRow], out_dir: Path
) -> None:
    since_us = NOW_US - 19 * DAY_US  # after tr_1 (20 days ago), tr_5 within the warm-up
    assert since_us - WARM_DAYS * DAY_US < NOW_US - 40 * DAY_US
    out = out_dir / "h.parquet"
    summary = export_history(engine, "ten_a", out, since_us=since_us, now_us=NOW_US)
    assert (summary.rows, summary.unlabelled) == (7, 2)
    full = out_dir / "full.parquet"
    export_history(engine, "ten_a", full, now_us=NOW_US)
    # The rows after `since` have the features a replay of everything gives them.
    since = engine_features(out).set_index("id")
    everything = engine_features(full).set_index("id")
    assert list(since.index) == ["tr_2", "tr_3", "tr_4", "tr_7", "tr_6"]
    assert since.equals(everything.loc[since.index])


def test_a_failed_export_writes_nothing(
    engine: Engine, history: list[store.EventRow], out_dir: Path
) -> None:
    with pytest.raises(HistoryError, match=r"write \.csv or \.parquet"):
        export_history(engine, "ten_a", out_dir / "h.json")
    with pytest.raises(HistoryError, match="no such folder"):
        export_history(engine, "ten_a", out_dir / "missing" / "h.csv")
    assert list(out_dir.iterdir()) == []
    empty = out_dir / "empty.csv"
    assert export_history(engine, "ten_nobody", empty).rows == 0
    assert empty.read_text() == "id,time,customer,amount,payee,device,ip,channel,label\n"


def test_train_takes_a_raw_history_through_the_engine_and_other_files_as_columns(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("id,time,customer,amount,payee,label\nt1,1.5,c1,2.0,p1,0\n")
    extra = tmp_path / "extra.csv"
    extra.write_text("id,time,customer,amount,score,label\nt1,1.5,c1,2.0,0.3,0\n")
    features = tmp_path / "features.csv"
    features.write_text("amount,customer_nb_tx_1d,label\n2.0,1,0\n")
    assert _engine_mode(raw, "label", FeaturesFrom.AUTO)
    assert not _engine_mode(extra, "label", FeaturesFrom.AUTO)  # its own columns too
    assert not _engine_mode(features, "label", FeaturesFrom.AUTO)
    assert not _engine_mode(raw, "label", FeaturesFrom.COLUMNS)
    assert _engine_mode(extra, "label", FeaturesFrom.ENGINE)
