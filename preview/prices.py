"""The committed price tables the cost estimate reads, and the one command that refreshes them from AWS.

`preview/price_tables/<region>.json` holds, per price key (`rds:db.t3.medium:multi-az`, `fargate:vcpu-hour`, ...),
the on-demand USD price, its unit, and the Price List API query that finds it (service code and exact-match
filters), or null for a price AWS sets by rule without a Price List product (EventBridge's free AWS service events). The table carries the date it was retrieved and its source; the estimate prints both.

    python -m preview.prices refresh [--region ap-northeast-1] [--pricing-region us-east-1] [--table FILE]

asks the AWS Price List API (boto3 `pricing`, GetProducts) for every entry and rewrites the table with today's date.
The API has endpoints only in us-east-1, eu-central-1 and ap-south-1, whatever region is priced. Each query must
come back with exactly one on-demand price; anything else (no product, several prices) stops the refresh with one
line naming the key, and the table is left as it was. Needs AWS credentials; exit 0 written, 2 bad input or AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping, Sequence

TABLES = Path(__file__).with_name("price_tables")
PRICING_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
"""Where the Price List API answers (it is not in every region)."""


class PriceTableError(Exception):
    """A table is missing, malformed, or lacks a price the stack needs; the message names the file and key."""


@dataclass(frozen=True)
class PriceTable:
    region: str
    retrieved: str
    source: str
    prices: Mapping[str, Mapping[str, Any]]
    path: Path

    def usd(self, key: str) -> Decimal:
        """The price of `key`; PriceTableError when the table has none (e.g. an instance class nobody priced yet)."""
        entry = self.prices.get(key)
        if entry is None:
            raise PriceTableError(
                f"{self.path} has no price '{key}': copy a similar entry, set its Price List filters, and run "
                f"`python -m preview.prices refresh --region {self.region}`"
            )
        return Decimal(str(entry["usd"]))


def table_path(region: str) -> Path:
    return TABLES / f"{region}.json"


def load(region: str, path: Path | None = None) -> PriceTable:
    path = path or table_path(region)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceTableError(f"no price table for {region} ({path}); write one with `python -m preview.prices refresh --region {region}`") from None
    except (OSError, ValueError) as err:
        raise PriceTableError(f"{path} is not a readable JSON price table: {err}") from None
    prices = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(prices, dict) or document.get("region") != region or not document.get("retrieved") or not document.get("source"):
        raise PriceTableError(f"{path} should be a price table for {region} with 'retrieved', 'source' and 'prices'")
    for key, entry in prices.items():
        try:
            query = entry["priceList"]
            if Decimal(str(entry["usd"])) < 0 or not entry["unit"] or (query is not None and not query["serviceCode"]):
                raise ValueError
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise PriceTableError(f"{path}: price '{key}' needs a non-negative 'usd', a 'unit' and a 'priceList' query (or null)") from None
    return PriceTable(region, str(document["retrieved"]), str(document["source"]), prices, path)


def on_demand_usd(price_list: Sequence[str], key: str) -> str:
    """The one on-demand USD price in a GetProducts answer (the dimension starting at 0 where there are tiers)."""
    found = set()
    for item in price_list:
        product = json.loads(item)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            dimensions = list(term.get("priceDimensions", {}).values())
            first = [d for d in dimensions if str(d.get("beginRange", "0")) == "0"] or dimensions
            found |= {d["pricePerUnit"]["USD"] for d in first if "USD" in d.get("pricePerUnit", {})}
    if len(found) != 1:
        raise PriceTableError(f"price '{key}': the Price List API returned {len(found)} on-demand prices ({sorted(found)}); fix its filters")
    return str(Decimal(found.pop()).normalize())


def fetch(client: Any, key: str, query: Mapping[str, Any]) -> str:
    filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in query["filters"].items()]
    items: list[str] = []
    for page in client.get_paginator("get_products").paginate(ServiceCode=query["serviceCode"], Filters=filters, FormatVersion="aws_v1"):
        items += page.get("PriceList", [])
    return on_demand_usd(items, key)


def refresh(region: str, pricing_region: str, path: Path | None = None, today: date | None = None, emit: Any = print) -> Path:
    """Re-read every entry of the region's table from the Price List API; write it only when all succeeded."""
    import boto3  # imported here: it adds ~0.15 s to every preview, and only this refresh needs it

    table = load(region, path)
    client = boto3.client("pricing", region_name=pricing_region)
    prices = {}
    for key, entry in table.prices.items():
        if entry["priceList"] is None:  # a price AWS sets by rule, with no Price List product (kept as it is)
            prices[key] = dict(entry)
            continue
        usd = fetch(client, key, entry["priceList"])
        if Decimal(usd) != Decimal(str(entry["usd"])):
            emit(f"{key}: {entry['usd']} -> {usd} USD per {entry['unit']}")
        prices[key] = {**entry, "usd": usd, "checked": "price-list"}
    stamp = (today or date.today()).isoformat()
    document = {
        "region": region,
        "currency": "USD",
        "retrieved": stamp,
        "source": f"AWS Price List API, GetProducts (pricing endpoint in {pricing_region}), on-demand terms, retrieved {stamp} "
        f"by `python -m preview.prices refresh --region {region}`.",
        "prices": prices,
    }
    table.path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return table.path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview.prices", description="The cost estimate's price tables.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("refresh", help="re-read a region's table from the AWS Price List API (needs credentials)")
    p.add_argument("--region", default="ap-northeast-1", help="the priced region (default: %(default)s)")
    p.add_argument("--pricing-region", default=PRICING_REGIONS[0], choices=PRICING_REGIONS, help="the API's endpoint (default: %(default)s)")
    p.add_argument("--table", type=Path, help="the table to refresh (default: preview/price_tables/<region>.json)")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        path = refresh(args.region, args.pricing_region, args.table)
    except NoCredentialsError:
        print("error: no AWS credentials: the Price List API needs a signed request (pricing:GetProducts); nothing written", file=sys.stderr)
        return 2
    except (PriceTableError, ClientError, BotoCoreError) as err:
        print(f"error: {err}; nothing written", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
