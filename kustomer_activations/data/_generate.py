"""Regenerate the bundled sample CSVs (deterministic: same seed, same files).

    python -m kustomer_activations.data._generate            # writes next to this file
    python -m kustomer_activations.data._generate --check    # fails if the files differ

Stdlib only. Names, domains and phone numbers are fake: domains live under
``example.com`` (reserved for documentation) and phones use the fictional
``+1555`` prefix. The rows listed in ``BAD_CUSTOMER_ROWS`` are broken on
purpose, each in the way its entry says.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from . import (
    BAD_CUSTOMER_ROWS,
    COMPANIES_FILE,
    COMPANY_COLUMNS,
    CUSTOMER_COLUMNS,
    CUSTOMERS_FILE,
)

SEED = 20240611
N_COMPANIES = 300
N_CUSTOMERS = 3000

_PREFIXES = (
    "Acme", "Northwind", "Blue Harbor", "Summit", "Brightline", "Cedar", "Copperfield",
    "Evergreen", "Falcon", "Granite", "Harborview", "Ironwood", "Juniper", "Keystone",
    "Lakeside", "Maple", "Meridian", "Nimbus", "Oakridge", "Pinnacle", "Quarry", "Redwood",
    "Riverstone", "Sapphire", "Silverline", "Starling", "Tidewater", "Trailhead", "Vantage",
    "Westfield", "Willow", "Zenith",
)
_SUFFIXES = (
    "Analytics", "Apparel", "Bakery", "Bikes", "Builders", "Coffee", "Consulting", "Dental",
    "Design", "Foods", "Freight", "Health", "Labs", "Logistics", "Media", "Outfitters",
    "Pharmacy", "Robotics", "Software", "Studios", "Supply", "Travel", "Ventures", "Wellness",
)
_INDUSTRIES = (
    "Retail", "E-commerce", "Software", "Healthcare", "Logistics", "Food & Beverage",
    "Manufacturing", "Media", "Travel", "Financial Services", "Education",
)
_FIRST = (
    "Ada", "Alan", "Amara", "Ben", "Carla", "Chen", "Dana", "Diego", "Elena", "Emeka", "Farah",
    "Grace", "Hana", "Ivan", "Jamal", "Jia", "Kai", "Laura", "Leo", "Maya", "Mia", "Noah",
    "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Sofia", "Tariq", "Uma", "Victor",
    "Wei", "Yara", "Yusuf", "Zoe",
)
_LAST = (
    "Abbott", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Mensah", "Nakamura", "Okafor", "Patel", "Quiroga",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Yilmaz", "Zhang",
)
_PERSONAL_DOMAINS = ("mail.example.com", "inbox.example.org", "post.example.net")
_PLANS = ("free", "starter", "pro", "enterprise")
_PLAN_WEIGHTS = (40, 30, 22, 8)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def companies(rng: random.Random) -> list[dict[str, str]]:
    """``N_COMPANIES`` companies with unique names and domains."""
    pairs = [(p, s) for p in _PREFIXES for s in _SUFFIXES]
    rng.shuffle(pairs)
    rows = []
    for i, (prefix, suffix) in enumerate(pairs[:N_COMPANIES], start=1):
        name = f"{prefix} {suffix}"
        rows.append({
            "id": f"co-{i:04d}",
            "name": name,
            "domain": f"{_slug(name)}.example.com",
            "industry": rng.choice(_INDUSTRIES),
            "employees": str(int(rng.lognormvariate(3.5, 1.2)) + 1),
        })
    return rows


def customers(rng: random.Random, companies: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """``N_CUSTOMERS`` customers (unique emails and phones), then the bad rows applied."""
    phones = rng.sample(range(10_000_000), N_CUSTOMERS)
    start = date(2019, 1, 1)
    rows = []
    for i in range(N_CUSTOMERS):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = rng.choice(companies) if rng.random() < 0.8 else None
        domain = company["domain"] if company is not None else rng.choice(_PERSONAL_DOMAINS)
        plan = rng.choices(_PLANS, _PLAN_WEIGHTS)[0]
        ltv = 0.0 if plan == "free" else rng.lognormvariate(6.0, 1.0)
        rows.append({
            "id": f"cu-{i + 1:05d}",
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}.{i + 1}@{domain}".lower(),
            "phone": f"+1555{phones[i]:07d}" if rng.random() < 0.85 else "",
            "company_id": company["id"] if company is not None else "",
            "plan": plan,
            "lifetime_value": f"{ltv:.2f}",
            "signup_date": (start + timedelta(days=rng.randrange(5 * 365))).isoformat(),
            "vip": "true" if plan == "enterprise" or rng.random() < 0.05 else "false",
        })
    _break(rows)
    return rows


def _break(rows: list[dict[str, str]]) -> None:
    """Make the rows of ``BAD_CUSTOMER_ROWS`` bad, each as described there."""
    bad = sorted(BAD_CUSTOMER_ROWS)
    rows[bad[0]]["email"] = rows[bad[0]]["email"].replace("@", ".at.")
    rows[bad[1]]["id"] = rows[bad[1] - 1]["id"]
    rows[bad[2]]["vip"] = "maybe"
    rows[bad[3]]["first_name"] = "Bartholomew-" * 22 + "Junior"
    rows[bad[4]]["signup_date"] = "2023-02-30"


def render(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    """CSV text with ``\\n`` line ends."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def generate() -> dict[str, str]:
    """File name -> CSV text."""
    rng = random.Random(SEED)
    company_rows = companies(rng)
    return {
        COMPANIES_FILE: render(company_rows, COMPANY_COLUMNS),
        CUSTOMERS_FILE: render(customers(rng, company_rows), CUSTOMER_COLUMNS),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the files (or, with ``--check``, compare them)."""
    parser = argparse.ArgumentParser(prog="python -m kustomer_activations.data._generate")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    stale = []
    for name, text in generate().items():
        path = here / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8", newline="")
            print(f"wrote {path} ({len(text.encode()):,} bytes)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
