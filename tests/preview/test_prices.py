"""The price table's refresh against a stub Price List endpoint on loopback (moto has no `pricing`).

The stub answers GetProducts as the API does (JSON 1.1, `PriceList` of JSON strings in the aws_v1 format, terms ->
OnDemand -> priceDimensions -> pricePerUnit.USD), from prices the test chooses, and records each request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from preview import prices

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = prices.load("ap-northeast-1")


def _product(usagetype: str, usd: str) -> str:
    """One aws_v1 price document, shaped as GetProducts returns them."""
    sku = f"SKU-{abs(hash(usagetype)) % 10**8}"
    return json.dumps({
        "product": {"sku": sku, "productFamily": "Test", "attributes": {"regionCode": "ap-northeast-1", "usagetype": usagetype}},
        "serviceCode": "Test",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": sku, "termAttributes": {},
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                "description": "test", "pricePerUnit": {"USD": usd}}},
        }}},
        "version": "20261201000000", "publicationDate": "2026-12-01T00:00:00Z",
    })


@contextmanager
def price_list(answers: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Serve GetProducts from `answers` (usagetype -> USD); yields the requests seen (target, auth scope, body)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"target": self.headers["X-Amz-Target"], "authorization": self.headers["Authorization"], "body": body})
            usagetype = next((f["Value"] for f in body["Filters"] if f["Field"] == "usagetype"), "")
            listed = [_product(usagetype, answers[usagetype])] if usagetype in answers else []
            data = json.dumps({"FormatVersion": "aws_v1", "PriceList": listed}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield seen
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL")
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        server.shutdown()
        server.server_close()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    copy = tmp_path / "ap-northeast-1.json"
    shutil.copy(COMMITTED.path, copy)
    return copy


def _raised(entry: Any) -> str:
    """A price the committed table does not hold, so the refreshed value visibly comes from the API."""
    return str((Decimal(str(entry["usd"])) * Decimal("1.1") + Decimal("0.001")).normalize())


def test_refresh_reads_every_entry_from_the_price_list_api(credentials: None, table: Path) -> None:
    queried = {key: entry for key, entry in COMMITTED.prices.items() if entry["priceList"] is not None}
    answers = {entry["priceList"]["filters"]["usagetype"]: _raised(entry) for entry in queried.values()}
    with price_list(answers) as seen:
        prices.refresh("ap-northeast-1", "us-east-1", table, today=date(2027, 1, 15), emit=lambda _: None)
    refreshed = prices.load("ap-northeast-1", table)
    assert refreshed.retrieved == "2027-01-15" and "AWS Price List API, GetProducts (pricing endpoint in us-east-1)" in refreshed.source
    for key, entry in queried.items():
        assert refreshed.usd(key) == Decimal(answers[entry["priceList"]["filters"]["usagetype"]]), key
        assert refreshed.prices[key]["checked"] == "price-list"
    for key in set(COMMITTED.prices) - set(queried):  # priced by rule, no Price List product: kept
        assert refreshed.prices[key] == COMMITTED.prices[key]
    assert len(seen) == len(queried) and set(queried) != set(COMMITTED.prices)
    assert all(r["target"] == "AWSPriceListService.GetProducts" and "/us-east-1/pricing/aws4_request" in r["authorization"] for r in seen)
    first = queried[sorted(queried)[0]]["priceList"]
    assert seen[0]["body"]["ServiceCode"] == first["serviceCode"]
    assert {f["Field"]: f["Value"] for f in seen[0]["body"]["Filters"]} == first["filters"]
    assert all(f["Type"] == "TERM_MATCH" for f in seen[0]["body"]["Filters"])


def test_an_entry_the_api_does_not_know_stops_the_refresh_and_writes_nothing(credentials: None, table: Path) -> None:
    before = table.read_text()
    missing = "rds:db.t3.medium:multi-az"
    answers = {e["priceList"]["filters"]["usagetype"]: "1" for k, e in COMMITTED.prices.items() if k != missing and e["priceList"]}
    answers.pop(COMMITTED.prices[missing]["priceList"]["filters"]["usagetype"], None)
    with price_list(answers):
        with pytest.raises(prices.PriceTableError, match=f"price '{missing}': the Price List API returned 0 on-demand prices"):
            prices.refresh("ap-northeast-1", "eu-central-1", table, emit=lambda _: None)
    assert table.read_text() == before


def test_the_command_without_credentials_is_one_line_exit_2(table: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "preview.prices", "refresh", "--table", str(table)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_a_bad_table_is_named() -> None:
    with pytest.raises(prices.PriceTableError, match="no price table for eu-west-9"):
        prices.load("eu-west-9")
