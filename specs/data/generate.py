#!/usr/bin/env python3
"""Generate the sample data of the Northwind Analytics example project.

Deterministic: the same arguments always write the same bytes (fixed random
seed, sorted output, "\\n" line endings, no dependence on locale, time zone or
the current date). Standard library only.

    python3 specs/data/generate.py                     # as of 2026-11-28, the committed data
    python3 specs/data/generate.py --as-of 2027-03-01  # the same data, shifted to a later date

Every timestamp is placed relative to --as-of, so rules such as
`e.occurredAt > now - days(30)` select the same accounts when `now` is the
--as-of date. The files and the schemas they feed (see ../sources.toml):

    accounts.jsonl                         account, from the CRM (lists: productsOwned)
    vendor/intent_technographics.jsonl     account, from the third-party intent/technographics feed
    people.csv                             person
    opportunities.csv                      opportunity
    email_opened/2026-MM.jsonl             email_opened, one file per month (a glob source)
    webinar_attended/2026-qN.csv           webinar_attended, one file per quarter (a folder source)
    account_contact_relations.csv          account_contact_relation (many-to-many person <-> account)
"""

import argparse
import csv
import datetime as dt
import json
import os
import random
import string

SEED = 20261128
DEFAULT_AS_OF = "2026-11-28"

N_ACCOUNTS = 300
N_LINKED_PEOPLE = 1030      # people with an accountId
N_DOMAIN_ONLY_PEOPLE = 110  # no accountId, but their email domain is an account domain
N_UNLINKED_PEOPLE = 60      # personal or unknown email domains: link to no account
N_OPPORTUNITIES = 200
N_EMAIL_OPENS = 3000
N_WEBINAR_ATTENDANCES = 400
N_RELATIONS = 160           # account-contact relations besides a person's own account

# Closed domains: spelled exactly as in ../schemas/*.toml.
INDUSTRIES = [("Software", 30), ("Fintech", 15), ("Healthcare", 14), ("Retail", 10),
              ("Manufacturing", 12), ("Media", 6), ("Logistics", 8), ("Public Sector", 5)]
COUNTRIES = {  # country -> (region, weight, phone prefix)
    "US": ("AMER", 40, "+1"), "CA": ("AMER", 6, "+1"), "BR": ("AMER", 3, "+55"),
    "GB": ("EMEA", 12, "+44"), "DE": ("EMEA", 10, "+49"), "FR": ("EMEA", 6, "+33"),
    "NL": ("EMEA", 5, "+31"), "SE": ("EMEA", 3, "+46"), "ES": ("EMEA", 3, "+34"),
    "AU": ("APAC", 5, "+61"), "SG": ("APAC", 4, "+65"), "JP": ("APAC", 3, "+81"),
}
STATUSES = [("prospect", 70), ("customer", 22), ("churned", 8)]
SENIORITIES = ["C-Level", "VP", "Director", "Manager", "Individual Contributor"]
DEPARTMENTS = ["Data", "Engineering", "IT", "Finance", "Marketing", "Operations"]
STAGES_OPEN = ["Prospecting", "Qualification", "Proposal", "Negotiation"]
PRODUCTS = ["Northwind Warehouse", "Northwind Insights"]

# Third-party technographics and intent (a "Bombora-style" vendor feed).
TECHNOLOGIES = ["Contoso Cloud", "Fabrikam Lakehouse", "Tailspin BI", "Litware ETL",
                "Adatum CRM", "Woodgrove Analytics", "Proseware Spreadsheets", "Fourth Coffee ERP"]
COMPETITORS = ["Fabrikam Lakehouse", "Tailspin BI"]
INTENT_TOPICS = ["Data Warehousing", "Cloud Data Platform", "Business Intelligence", "ETL",
                 "Data Governance", "Customer Data Platform", "Reverse ETL", "Spreadsheet Automation"]
NAICS = {"Software": "513210", "Fintech": "522320", "Healthcare": "621111", "Retail": "455110",
         "Manufacturing": "334111", "Media": "516210", "Logistics": "493110", "Public Sector": "921190"}

EMAIL_CAMPAIGNS = ["dw-nurture-2026-q3", "dw-nurture-2026-q4", "insights-launch-2026",
                   "newsletter-2026-09", "newsletter-2026-10", "newsletter-2026-11",
                   "webinar-invite-2026-10", "webinar-invite-2026-11", "customer-roadmap-2026"]
WEBINARS = [  # id, title, topic, days before as-of
    ("WEB-2026-06", "Modern Data Warehousing 101", "Data Warehousing", 170),
    ("WEB-2026-07", "Governed Self-Service BI", "Business Intelligence", 140),
    ("WEB-2026-08", "Data Governance for Regulated Industries", "Data Governance", 110),
    ("WEB-2026-09", "From Lakehouse to Warehouse: a Migration Playbook", "Data Warehousing", 80),
    ("WEB-2026-10", "AI-ready Data Pipelines", "AI and ML", 52),
    ("WEB-2026-11A", "Northwind Insights Live Demo", "Business Intelligence", 24),
    ("WEB-2026-11B", "Cutting Warehouse Costs in 2027", "Data Warehousing", 9),
]

NAME_A = ["Blue", "North", "Silver", "Iron", "Bright", "Cedar", "Harbor", "Summit", "Granite", "Maple",
          "Falcon", "River", "Quantum", "Orbit", "Pioneer", "Crescent", "Atlas", "Beacon", "Cobalt", "Delta",
          "Evergreen", "Frontier", "Golden", "Horizon", "Juniper", "Keystone", "Lumen", "Meridian", "Nimbus",
          "Oakridge", "Pacific", "Redwood", "Sterling", "Tidewater", "Vertex", "Willow"]
NAME_B = ["Logistics", "Health", "Pay", "Retail", "Systems", "Labs", "Capital", "Media", "Foods", "Motors",
          "Software", "Data", "Clinics", "Freight", "Bank", "Works", "Networks", "Devices", "Analytics"]
FIRST = ["Ava", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jonas", "Kira", "Liam",
         "Maya", "Noah", "Olivia", "Priya", "Quentin", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wei", "Yuki",
         "Zoe", "Aiko", "Bruno", "Carmen", "Diego", "Elif", "Farah", "Gustav", "Hana", "Ines", "Jae", "Lena"]
LAST = ["Andersson", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hoffmann", "Ito", "Jansen",
        "Kowalski", "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Schmidt", "Tanaka",
        "Ueda", "Varga", "Williams", "Xu", "Young", "Zimmermann", "Silva", "Novak", "Moreau", "Larsen"]
PERSONAL_DOMAINS = ["mail.example", "inbox.example", "freemail.example"]


def weighted(rng, pairs):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs], k=1)[0]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def title_for(rng, seniority, department):
    if seniority == "C-Level":
        return {"Data": "Chief Data Officer", "Engineering": "Chief Technology Officer",
                "IT": "Chief Information Officer", "Finance": "Chief Financial Officer",
                "Marketing": "Chief Marketing Officer", "Operations": "Chief Operating Officer"}[department]
    area = {"Data": rng.choice(["Data", "Analytics", "Data Platform"]), "Engineering": "Engineering",
            "IT": "IT", "Finance": "Finance", "Marketing": "Marketing Operations",
            "Operations": "Operations"}[department]
    if seniority == "VP":
        return f"VP of {area}"
    if seniority == "Director":
        return f"Director of {area}"
    if seniority == "Manager":
        return f"{area} Manager"
    return rng.choice({"Data": ["Data Engineer", "Analytics Engineer", "Data Analyst"],
                       "Engineering": ["Software Engineer", "Platform Engineer"],
                       "IT": ["Systems Administrator", "IT Specialist"],
                       "Finance": ["Financial Analyst"], "Marketing": ["Marketing Specialist"],
                       "Operations": ["Operations Analyst"]}[department])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", default=DEFAULT_AS_OF, help="evaluation date the data is placed before (YYYY-MM-DD)")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="output folder")
    args = parser.parse_args()
    as_of = dt.datetime.strptime(args.as_of, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    rng = random.Random(SEED)

    def ago(days_min, days_max):
        """A timestamp between days_max and days_min days before as-of, on a whole minute."""
        minutes = rng.randint(int(days_min * 1440), int(days_max * 1440))
        return as_of - dt.timedelta(minutes=minutes)

    # ---- accounts (CRM) and the vendor feed -------------------------------------------------
    accounts, vendor = [], []
    used_names = set()
    country_pairs = [(c, w) for c, (_, w, _) in COUNTRIES.items()]
    for i in range(1, N_ACCOUNTS + 1):
        while True:
            name = f"{rng.choice(NAME_A)} {rng.choice(NAME_B)}"
            if name not in used_names:
                used_names.add(name)
                break
        domain = name.lower().replace(" ", "") + ".example"
        industry = weighted(rng, INDUSTRIES)
        employees = int(min(80000, max(15, rng.lognormvariate(6.3, 1.5))))
        revenue = round(employees * rng.uniform(120_000, 320_000), -3)
        country = weighted(rng, country_pairs)
        status = weighted(rng, STATUSES)
        if status == "customer":
            products = weighted(rng, [(["Northwind Warehouse"], 60),
                                      (["Northwind Insights", "Northwind Warehouse"], 25),
                                      (["Northwind Insights"], 15)])
        else:
            products = []
        # How actively this account's people engage with our email and webinars (first party).
        engagement = rng.choices([3.0, 1.0, 0.25], weights=[20, 40, 40])[0]
        if industry in ("Software", "Fintech", "Healthcare") and employees >= 500:
            engagement *= 1.5
        accounts.append({
            "accountId": f"ACC-{i:06d}", "name": name, "domain": domain, "industry": industry,
            "employees": employees, "annualRevenue": revenue, "country": country,
            "region": COUNTRIES[country][0], "status": status, "productsOwned": products,
            "updatedAt": iso(ago(0.05, 0.95)),
            "_engagement": engagement,
        })
        if rng.random() < 0.85:  # the vendor matches about 85% of our accounts
            stack = sorted(rng.sample(TECHNOLOGIES, rng.randint(1, 4)))
            if status == "customer" and "Northwind Warehouse" in products:
                stack = sorted(set(stack) - set(COMPETITORS))  # customers replaced the competitor
            surging = rng.random() < 0.3
            score = rng.randint(60, 99) if surging else rng.randint(0, 59)
            topics = sorted(rng.sample(INTENT_TOPICS[:5] if surging else INTENT_TOPICS, rng.randint(1, 3)))
            vendor.append({
                "accountId": f"ACC-{i:06d}", "techStack": stack, "intentTopics": topics,
                "intentScore": score, "naicsCode": NAICS[industry],
                "signalsUpdatedAt": iso(as_of - dt.timedelta(days=2, hours=6)),
            })

    # ---- people ------------------------------------------------------------------------------
    weights = [max(1.0, (a["employees"] ** 0.33)) * (1.4 if a["_engagement"] > 1 else 1.0) for a in accounts]
    people, used_emails = [], set()

    def make_person(pid, account, domain):
        while True:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first.lower()}.{last.lower()}@{domain}"
            if email not in used_emails:
                used_emails.add(email)
                break
        seniority = rng.choices(SENIORITIES, weights=[6, 12, 22, 28, 32])[0]
        department = rng.choices(DEPARTMENTS, weights=[30, 20, 15, 12, 13, 10])[0]
        country = account["country"] if account else rng.choice(list(COUNTRIES))
        region, _, prefix = COUNTRIES[country]
        phone = f"{prefix}{rng.randint(2000000000, 9999999999)}" if rng.random() < 0.6 else ""
        opt_in = 0.55 if region == "EMEA" else 0.75
        sf_id = dyn_id = ""
        if account and region == "EMEA" and rng.random() < 0.8:
            dyn_id = "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}".format(
                rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48))
        elif account and rng.random() < 0.8:
            sf_id = "003" + "".join(rng.choices(string.ascii_letters + string.digits, k=15))
        return {
            "personId": f"P-{pid:06d}", "accountId": "", "email": email, "phone": phone,
            "firstName": first, "lastName": last, "jobTitle": title_for(rng, seniority, department),
            "seniority": seniority, "department": department,
            "emailConsent": "y" if rng.random() < opt_in else "n",
            "adsConsent": "y" if rng.random() < opt_in - 0.15 else "n",
            "salesforceContactId": sf_id, "dynamicsContactId": dyn_id,
            "createdAt": iso(ago(30, 320)),
            "_engagement": account["_engagement"] if account else 0.5,
        }

    pid = 0
    for _ in range(N_LINKED_PEOPLE):
        pid += 1
        account = rng.choices(accounts, weights=weights)[0]
        p = make_person(pid, account, account["domain"])
        p["accountId"] = account["accountId"]
        people.append(p)
    for _ in range(N_DOMAIN_ONLY_PEOPLE):  # linked only through the email_domain fallback
        pid += 1
        account = rng.choices(accounts, weights=weights)[0]
        people.append(make_person(pid, account, account["domain"]))
    for _ in range(N_UNLINKED_PEOPLE):
        pid += 1
        people.append(make_person(pid, None, rng.choice(PERSONAL_DOMAINS)))

    # ---- opportunities -----------------------------------------------------------------------
    opportunities = []
    customers = [a for a in accounts if a["status"] == "customer"]
    prospects = [a for a in accounts if a["status"] == "prospect"]
    for i in range(1, N_OPPORTUNITIES + 1):
        roll = rng.random()
        if roll < 0.35:     # the deal that made a customer a customer, or a renewal/expansion
            account, stage = rng.choice(customers), "Closed Won"
        elif roll < 0.42:   # won recently, but the CRM status still says prospect (it lags)
            account, stage = rng.choice(prospects), "Closed Won"
        elif roll < 0.60:
            account, stage = rng.choice(accounts), "Closed Lost"
        else:
            account, stage = rng.choice(prospects + customers[:10]), rng.choice(STAGES_OPEN)
        if stage == "Closed Won" and account["status"] == "customer":
            product = rng.choice(account["productsOwned"])
        else:
            product = rng.choices(PRODUCTS, weights=[65, 35])[0]
        if stage == "Closed Won" and roll >= 0.35:
            close = ago(3, 45)
        elif stage.startswith("Closed"):
            close = ago(20, 300)
        else:
            close = as_of + dt.timedelta(days=rng.randint(10, 150), hours=rng.randint(0, 23))
        created = max(close - dt.timedelta(days=rng.randint(30, 200)), as_of - dt.timedelta(days=330))
        base = 180_000 if product == "Northwind Warehouse" else 60_000
        opportunities.append({
            "opportunityId": f"OPP-{i:06d}", "accountId": account["accountId"],
            "name": f"{account['name']} - {product}", "stage": stage, "product": product,
            "amount": round(base * rng.uniform(0.3, 3.0), -2),
            "createdAt": iso(created), "closeDate": iso(close),
        })

    # ---- events ------------------------------------------------------------------------------
    p_weights = [p["_engagement"] for p in people]
    opens = []
    for i in range(1, N_EMAIL_OPENS + 1):
        person = rng.choices(people, weights=p_weights)[0]
        # Engaged people skew recent.
        days = rng.triangular(0, 180, 0 if person["_engagement"] > 1 else 120)
        opens.append({
            "eventId": f"EO-{i:07d}", "personId": person["personId"],
            "occurredAt": iso(as_of - dt.timedelta(minutes=int(days * 1440) + 1)),
            "campaign": rng.choice(EMAIL_CAMPAIGNS),
        })
    webinars = []
    for i in range(1, N_WEBINAR_ATTENDANCES + 1):
        person = rng.choices(people, weights=p_weights)[0]
        web_id, title, topic, days = rng.choices(WEBINARS, weights=[10, 10, 8, 14, 12, 20, 26])[0]
        start = (as_of - dt.timedelta(days=days)).replace(hour=16, minute=0)
        webinars.append({
            "eventId": f"WA-{i:06d}", "personId": person["personId"],
            "occurredAt": iso(start + dt.timedelta(minutes=rng.randint(0, 10))),
            "webinarId": web_id, "webinarTitle": title, "topic": topic,
            "minutesWatched": rng.randint(3, 60),
        })

    # ---- account-contact relations -------------------------------------------------------------
    # A random stream of its own, so the files above do not change with it.
    rel_rng = random.Random(SEED + 1)
    roles = ["Board Member", "Consultant", "Former Employee", "Partner"]
    relations = []
    for i in range(1, N_RELATIONS + 1):
        person = rel_rng.choice(people)
        account = rel_rng.choice(accounts)
        relations.append({
            "relationId": f"R-{i:05d}", "accountId": account["accountId"],
            "personId": person["personId"], "role": rel_rng.choice(roles),
            "startedAt": iso(as_of - dt.timedelta(minutes=rel_rng.randint(30 * 1440, 720 * 1440))),
        })
    # A pair recorded twice and a relation to an account that is not there:
    # both occur in CRM exports.
    relations.append(dict(relations[0], relationId=f"R-{N_RELATIONS + 1:05d}"))
    relations.append(dict(relations[1], relationId=f"R-{N_RELATIONS + 2:05d}", accountId="ACC-999999"))

    # ---- write -------------------------------------------------------------------------------
    out = args.out

    def write_jsonl(rel, rows):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps({k: v for k, v in row.items() if not k.startswith("_")},
                                   ensure_ascii=False, separators=(",", ":")) + "\n")

    def write_csv(rel, rows):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cols = [k for k in rows[0] if not k.startswith("_")]
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    write_jsonl("accounts.jsonl", accounts)
    write_jsonl("vendor/intent_technographics.jsonl", vendor)
    write_csv("people.csv", people)
    write_csv("opportunities.csv", opportunities)
    write_csv("account_contact_relations.csv", relations)
    opens.sort(key=lambda e: (e["occurredAt"], e["eventId"]))
    by_month = {}
    for e in opens:
        by_month.setdefault(e["occurredAt"][:7], []).append(e)
    for month, rows in sorted(by_month.items()):
        write_jsonl(f"email_opened/{month}.jsonl", rows)
    webinars.sort(key=lambda e: (e["occurredAt"], e["eventId"]))
    by_quarter = {}
    for e in webinars:
        q = (int(e["occurredAt"][5:7]) - 1) // 3 + 1
        by_quarter.setdefault(f"{e['occurredAt'][:4]}-q{q}", []).append(e)
    for quarter, rows in sorted(by_quarter.items()):
        write_csv(f"webinar_attended/{quarter}.csv", rows)


if __name__ == "__main__":
    main()
