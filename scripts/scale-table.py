#!/usr/bin/env python3
"""Scale table: what each AWS part must sustain at 1k, 10k and 100k deliveries/s.

Reads the metered per-delivery figures of `scripts/bench --only cost` (the pretty-printed case
objects, or the bench's last JSON line with its `cost` array) from a file or stdin and prints
markdown tables: requests, concurrency, queue, DynamoDB units (per table and on the hottest
keys), the default quota each one meets and the monthly cost.

    scripts/bench --only cost | python3 scripts/scale-table.py
    python3 scripts/scale-table.py cost.txt

Every cell is a metered per-delivery figure times the rate, except the Lambda durations, which
are the assumptions printed with the tables (and settable with the options below).
"""

import argparse
import json
import math
import pathlib
import re
import sys

# SendMessageBatch requests the ingest keeps in flight (adapters/sqs.rs).
SENDS_AT_ONCE = 10

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECONDS_PER_MONTH = 2_592_000  # 30 days
RATES = (1_000, 10_000, 100_000)
# (events per request, fan-out) -> bench case
CASES = {
    (1, 1): "single",
    (1, 10): "single-f10",
    (100, 1): "f1",
    (100, 10): "f10",
}
NEEDED_FIELDS = (
    "fan_out",
    "jobs_per_batch",
    "wru_per_delivery",
    "rru_per_delivery",
    "sqs_requests_per_delivery",
    "usd_per_million_deliveries",
    "usd_share",
    "dynamodb_per_delivery",
    "logs",
    "hottest_partition",
)

# Default quotas (us-east-1), with the page each comes from.
APIGW_RPS = 10_000  # https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
LAMBDA_ACCOUNT = 1_000  # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
ESM_BATCHES = 1_000  # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
ESM_RAMP_PER_MIN = 300  # same page: +300 concurrent invocations a minute, from 5
SQS_IN_FLIGHT = 120_000  # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
DDB_TABLE = 40_000  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
DDB_NEW_WRITE = 4_000  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html
DDB_NEW_READ = 12_000
DDB_KEY_WRITE = 1_000  # per partition; same page
DDB_KEY_READ = 3_000
DELIVERY_SHARDS = 16  # docs/architecture.md: <hook id>#d<0-f>


def fail(message):
    print(f"scale-table: {message}", file=sys.stderr)
    sys.exit(1)


def read_objects(text):
    """Every JSON object in the text that starts a line (pretty-printed or one per line)."""
    decoder = json.JSONDecoder()
    objects = []
    for match in re.finditer(r"^\{", text, re.MULTILINE):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects


def load_cases(text):
    objects = read_objects(text)
    with_cost = [o for o in objects if isinstance(o.get("cost"), list)]
    cases = with_cost[-1]["cost"] if with_cost else [o for o in objects if "case" in o]
    by_name = {c.get("case"): c for c in cases if isinstance(c, dict)}
    missing = [name for name in CASES.values() if name not in by_name]
    if missing:
        fail(
            "the input lacks the cost case(s) "
            + ", ".join(missing)
            + " (expected the objects of `scripts/bench --only cost`, or its last JSON line)"
        )
    for name in CASES.values():
        absent = [f for f in NEEDED_FIELDS if f not in by_name[name]]
        if absent:
            fail(f"case {name} lacks {', '.join(absent)}")
        if "wcu_per_s_at_5000_deliveries_per_s" not in by_name[name]["hottest_partition"]:
            fail(f"case {name} lacks hottest_partition.wcu_per_s_at_5000_deliveries_per_s")
    return by_name


def template_memory_mb():
    text = (ROOT / "infra" / "template.yaml").read_text()
    match = re.search(r"^Globals:.*?^\s+MemorySize:\s*(\d+)", text, re.MULTILINE | re.DOTALL)
    return int(match.group(1)) if match else 256


def ops(case):
    """Operation -> (requests, WRU, RRU) per delivery."""
    return {op: (n, w, r) for op, n, w, r in case["dynamodb_per_delivery"]}


class Model:
    """Per-delivery loads of one case, and the durations assumed on AWS."""

    def __init__(self, case, per_request, prices, args, memory_mb):
        self.case = case
        self.name = case["case"]
        self.per_request = per_request
        self.fan_out = case["fan_out"]
        self.jobs = case["jobs_per_batch"]
        o = ops(case)
        get = o.get("GetItem", (0, 0, 0))
        query = o.get("Query", (0, 0, 0))
        put = o.get("PutItem", (0, 0, 0))
        update = o.get("UpdateItem", (0, 0, 0))
        # API Gateway requests per delivery, from the metered API Gateway dollars.
        self.api = case["usd_share"]["api_gateway"] / prices["api_gateway_http_api_usd_per_million_requests"]
        # SQS: the poller receives and deletes 10 messages a request; the rest are the ingest's sends.
        per_poll = 1 / min(10, self.jobs)
        self.sqs = case["sqs_requests_per_delivery"]
        self.sends = max(0.0, self.sqs - 2 * per_poll)
        # Tables (docs/architecture.md): hooks = the hook reads (GetItem) and the by-event
        # query; deliveries = the delivery puts and the counters and health updates.
        self.hooks_rru = get[2] + query[2]
        self.query_rru = query[2]
        self.deliveries_wru = put[1] + update[1]
        self.update_wru = update[1]
        self.put_wru = put[1]
        # Durations assumed on AWS.
        requests_per_delivery = self.api
        per_request_query = query[0] / requests_per_delivery
        per_request_sends = self.sends / requests_per_delivery
        # The ingest sends up to SENDS_AT_ONCE requests at a time (adapters/sqs.rs).
        send_rounds = math.ceil(per_request_sends / SENDS_AT_ONCE - 1e-9)
        self.ingest_ms = args.lambda_ms + per_request_query * args.dynamodb_ms + send_rounds * args.sqs_ms
        # A batch: the hook reads, the posts, the records, the counters: each step concurrent
        # over the batch's jobs, so three DynamoDB round trips one after the other.
        self.sender_overhead_ms = args.lambda_ms + 3 * args.dynamodb_ms
        hp = case["hottest_partition"]
        self.hot_at_5000 = hp["wcu_per_s_at_5000_deliveries_per_s"]
        self.hooks_in_case = self.fan_out  # the bench's cases post every event to every hook
        self.gb = memory_mb / 1024
        self.prices = prices
        self.usd = case["usd_per_million_deliveries"] / 1e6
        self.logs_usd = case["logs"]["usd_per_million_deliveries"] / 1e6

    # Per delivery/s of one hook: the busiest key's WCU/s, and the hook's own key's.
    def hot_per_hook_rate(self):
        return self.hot_at_5000 / (5000 / self.hooks_in_case)

    def sender_ms(self, endpoint_ms):
        return self.sender_overhead_ms + endpoint_ms

    def sender_concurrency(self, rate, endpoint_ms):
        return rate / self.jobs * self.sender_ms(endpoint_ms) / 1000

    def ingest_concurrency(self, rate):
        return rate * self.api * self.ingest_ms / 1000

    def lambda_usd_month(self, rate, endpoint_ms):
        price_gbs = self.prices["lambda_arm64_usd_per_gb_second"]
        price_req = self.prices["lambda_usd_per_million_requests"] / 1e6
        ingest = rate * self.api * (self.ingest_ms / 1000 * self.gb * price_gbs + price_req)
        sender = rate / self.jobs * (self.sender_ms(endpoint_ms) / 1000 * self.gb * price_gbs + price_req)
        return (ingest + sender) * SECONDS_PER_MONTH

    def limits(self, endpoints, reserved):
        """Each limit: (short name, long name, endpoint label or None, deliveries/s at which it
        is reached, what to raise, whether it is a quota rather than a ramp)."""
        hooks = f"{self.hooks_in_case} hook{'s' if self.hooks_in_case > 1 else ''}"
        out = [("API Gateway 10,000/s", "API Gateway: 10,000 requests/s (account, Region)", None,
                APIGW_RPS / self.api, "Service Quotas: API Gateway throttle quota (L-8A5B8E43)", True)]
        for label, ms in endpoints:
            sender = self.sender_ms(ms) / 1000 / self.jobs
            ingest = self.api * self.ingest_ms / 1000
            out += [
                (f"sender reserved {reserved}", f"sender reserved concurrency {reserved}", label,
                 reserved / sender, "the `SenderReservedConcurrency` parameter", True),
                ("Lambda 1,000 concurrent", "Lambda: 1,000 concurrent executions (Region)", label,
                 LAMBDA_ACCOUNT / (sender + ingest), "Service Quotas: Lambda concurrent executions", True),
                ("SQS mapping 1,000 batches", "SQS event source: 1,000 batches at once", label,
                 ESM_BATCHES / sender, "none: a larger `SenderBatchSize`, or the mapping's provisioned mode", True),
                ("SQS 120,000 in flight", "SQS: about 120,000 messages in flight", label,
                 SQS_IN_FLIGHT / (self.sender_ms(ms) / 1000), "support request, or a second queue", True),
            ]
        out += [
            ("new deliveries table 4,000 WRU", "new on-demand table: 4,000 WRU/s at once (deliveries)", None,
             DDB_NEW_WRITE / self.deliveries_wru,
             "pre-warm (warm throughput), or ramp: on-demand serves up to 2× the previous peak", False),
            ("new hooks table 12,000 RRU", "new on-demand table: 12,000 RRU/s at once (hooks)", None,
             DDB_NEW_READ / self.hooks_rru, "pre-warm the hooks table and its by-event index", False),
            ("deliveries table 40,000 WRU", "DynamoDB: 40,000 WRU/s per table (deliveries)", None,
             DDB_TABLE / self.deliveries_wru, "Service Quotas: DynamoDB table-level write throughput", True),
            ("hooks table 40,000 RRU", "DynamoDB: 40,000 RRU/s per table (hooks)", None,
             DDB_TABLE / self.hooks_rru, "Service Quotas: DynamoDB table-level read throughput", True),
        ]
        if self.query_rru:
            # One event name: every event's subscription query reads one key of the index.
            out.append(("by-event key 3,000 RRU", "3,000 RRU/s on one key: by-event index, one event name", None,
                        DDB_KEY_READ / self.query_rru,
                        "none: keep the subscriptions in the ingest for a few seconds", True))
        out.append(("delivery shard key 1,000 WCU", f"1,000 WCU/s on one key: a hook's busiest delivery shard ({hooks})", None,
                    DDB_KEY_WRITE / (self.hot_at_5000 / 5000), "none: more than 16 delivery shards", True))
        if self.update_wru:
            out.append(("hook key 1,000 WCU", f"1,000 WCU/s on one key: the hook's own key (counters, health; {hooks})", None,
                        DDB_KEY_WRITE / (self.update_wru / self.hooks_in_case),
                        "none: larger batches, or counters over several keys", True))
        return out


def num(x):
    if x >= 10:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.1f}"
    if x == 0:
        return "0"
    return f"{x:.2f}"


def usd(x):
    if x >= 100:
        return f"${x:,.0f}"
    return f"${x:,.2f}"


def ramp(need, at_once):
    if need <= at_once:
        return "at once"
    doublings = math.ceil(math.log2(need / at_once))
    return f"{need / at_once:.1f}×: ≥ {doublings * 30} min, or pre-warm"


def table(models, args, reserved):
    """One markdown table, columns = rate × fan-out."""
    endpoints = (("50 ms", args.fast_ms), ("1 s", args.slow_ms))
    columns = [(rate, m) for rate in RATES for m in models]
    lines = []
    head = [f"{r // 1000}k/s, fan-out {m.fan_out}" for r, m in columns]
    lines.append("| per second | " + " | ".join(head) + " |")
    lines.append("|---|" + "---|" * len(columns))

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(r, m) for r, m in columns) + " |")

    row("events", lambda r, m: num(r / m.fan_out))
    row("API Gateway requests (quota 10,000)", lambda r, m: num(r * m.api))
    row("ingest: invocations × assumed ms", lambda r, m: f"{num(r * m.api)} × {m.ingest_ms:,.0f}")
    row("ingest concurrency", lambda r, m: num(m.ingest_concurrency(r)))
    row("sender invocations (deliveries ÷ jobs per batch)", lambda r, m: num(r / m.jobs))
    for label, ms in endpoints:
        row(f"sender concurrency, {label} endpoint (reserved {reserved})",
            lambda r, m, ms=ms: num(m.sender_concurrency(r, ms)))
    row("Lambda concurrency, ingest + sender at 1 s (account 1,000)",
        lambda r, m: num(m.ingest_concurrency(r) + m.sender_concurrency(r, args.slow_ms)))
    row("minutes for the SQS poller to reach the 1 s sender concurrency (+300/min from 5)",
        lambda r, m: num(max(0.0, (m.sender_concurrency(r, args.slow_ms) - 5) / ESM_RAMP_PER_MIN)))
    row("SQS requests", lambda r, m: num(r * m.sqs))
    row("SQS messages in flight, 1 s endpoint (120,000)",
        lambda r, m: num(r * m.sender_ms(args.slow_ms) / 1000))
    row("DynamoDB deliveries table WRU (table 40,000)", lambda r, m: num(r * m.deliveries_wru))
    row("DynamoDB hooks table RRU (table 40,000)", lambda r, m: num(r * m.hooks_rru))
    row("on-demand ramp, deliveries table (new table 4,000 WRU)",
        lambda r, m: ramp(r * m.deliveries_wru, DDB_NEW_WRITE))
    row("on-demand ramp, hooks table (new table 12,000 RRU)",
        lambda r, m: ramp(r * m.hooks_rru, DDB_NEW_READ))
    row("busiest write key, all to 1 hook (fan-out 1) or 10 hooks (fan-out 10): WCU (1,000)",
        lambda r, m: num(m.hot_at_5000 * r / 5000))
    row("the hook's own key (counters, health): WCU (1,000)",
        lambda r, m: num(m.update_wru * r / m.hooks_in_case))
    row(f"hottest write key, spread over {args.hooks} hooks: WCU",
        lambda r, m: num(m.hot_per_hook_rate() * r / args.hooks))
    row("hottest read key, by-event index, one event name: RRU (3,000)",
        lambda r, m: num(m.query_rru * r))
    row("**$ a month** (metered: DynamoDB, SQS, Lambda, API Gateway)",
        lambda r, m: "**" + usd(m.usd * r * SECONDS_PER_MONTH) + "**")
    row("Lambda alone, recomputed at the assumed AWS durations, 1 s endpoint",
        lambda r, m: usd(m.lambda_usd_month(r, args.slow_ms)))
    row("CloudWatch Logs $ a month (at `info`)", lambda r, m: usd(m.logs_usd * r * SECONDS_PER_MONTH))

    def first(label):
        def cell(r, m):
            reached = sorted(
                (at, short)
                for short, _, ep, at, _, quota in m.limits(endpoints, reserved)
                if quota and ep in (None, label) and at <= r
            )
            return ", ".join(f"{short} (at {num(at)})" for at, short in reached[:2]) or "none"
        return cell

    for label, _ in endpoints:
        row(f"first quotas reached, {label} endpoint (at deliveries/s)", first(label))
    return lines


def limits_table(models, args, reserved):
    endpoints = (("50 ms", args.fast_ms), ("1 s", args.slow_ms))
    rows = {}
    for i, m in enumerate(models):
        for short, name, ep, at, action, _ in m.limits(endpoints, reserved):
            key = name + (f", {ep} endpoint" if ep else "")
            rows.setdefault(key, (action, {}))[1][i] = at
    lines = []
    head = [f"fan-out {m.fan_out}, {m.per_request} per request" for m in models]
    lines.append("| limit | " + " | ".join(head) + " | what to raise |")
    lines.append("|---|" + "---|" * len(models) + "---|")
    for key, (action, ats) in rows.items():
        cells = [num(ats[i]) if i in ats else "–" for i in range(len(models))]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {action} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", nargs="?", help="cost JSON (default: stdin)")
    parser.add_argument("--lambda-ms", type=float, default=5.0,
                        help="a warm invocation's own work besides its AWS calls (default 5 ms)")
    parser.add_argument("--dynamodb-ms", type=float, default=10.0,
                        help="one DynamoDB round trip from Lambda (default 10 ms)")
    parser.add_argument("--sqs-ms", type=float, default=20.0,
                        help="one SQS SendMessageBatch from Lambda (default 20 ms)")
    parser.add_argument("--fast-ms", type=float, default=50.0, help="a fast endpoint (default 50 ms)")
    parser.add_argument("--slow-ms", type=float, default=1000.0, help="a slow endpoint (default 1 s)")
    parser.add_argument("--hooks", type=int, default=100,
                        help="hooks the traffic is spread over in the spread row (default 100)")
    parser.add_argument("--reserved", type=int, default=50,
                        help="SenderReservedConcurrency (default 50, the template's)")
    args = parser.parse_args()

    if args.input:
        try:
            text = pathlib.Path(args.input).read_text()
        except OSError as e:
            fail(f"cannot read {args.input}: {e.strerror}")
    else:
        text = sys.stdin.read()
    cases = load_cases(text)
    prices = json.loads((ROOT / "docs" / "aws-prices.json").read_text())
    memory_mb = template_memory_mb()

    groups = []
    try:
        for per_request in (1, 100):
            models = [Model(cases[CASES[(per_request, f)]], per_request, prices, args, memory_mb) for f in (1, 10)]
            for m in models:
                m.limits(((" ", args.fast_ms), ("  ", args.slow_ms)), args.reserved)
            groups.append(models)
    except (ZeroDivisionError, KeyError, TypeError, ValueError) as e:
        fail(f"a cost case has a missing or zero figure the table needs ({type(e).__name__}: {e})")

    for models in groups:
        per_request = models[0].per_request
        names = " and ".join(f"`{m.name}`" for m in models)
        print(f"### {per_request} event{'s' if per_request > 1 else ''} per request (cases {names})")
        print()
        print("\n".join(table(models, args, args.reserved)))
        print()
    print("### Where each limit is reached (deliveries/s)")
    print()
    print("\n".join(limits_table(groups[0] + groups[1], args, args.reserved)))
    print()
    single = groups[0][0]
    k = single.hot_per_hook_rate()
    even = single.put_wru / DELIVERY_SHARDS  # the delivery items alone, spread evenly
    print(
        f"One hook, {DELIVERY_SHARDS} delivery shards: its busiest key takes {k:.3f} WCU per delivery/s "
        f"(metered, `{single.name}`; an even spread would be {even:.4f}), so one hook fits under "
        f"{DDB_KEY_WRITE:,} WCU/s up to about {num(DDB_KEY_WRITE / k)} deliveries/s "
        f"({num(DDB_KEY_WRITE / even)} if evenly spread); its own key (counters, health, "
        f"{single.update_wru:.3f} WCU per delivery) up to {num(DDB_KEY_WRITE / single.update_wru)}. "
        f"At 100k/s one hook needs about {math.ceil(100_000 * k / DDB_KEY_WRITE * DELIVERY_SHARDS)} "
        f"delivery shards at the metered spread."
    )
    print()
    print(
        f"Assumed on AWS: a warm invocation's own work {args.lambda_ms:g} ms, a DynamoDB round trip "
        f"{args.dynamodb_ms:g} ms, an SQS SendMessageBatch {args.sqs_ms:g} ms (up to 10 sent at once); "
        f"ingest = own work + its queries + its sends per request; sender = own work + 3 DynamoDB round "
        f"trips + the endpoint (a batch's posts run concurrently); {memory_mb} MB; 30-day month."
    )


if __name__ == "__main__":
    main()
