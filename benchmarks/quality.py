"""The quality gate's cost: a Spark write with a 10-expectation suite vs the same write without.

10M rows (``--quick``: 1M), cached, written to a new Delta table each time. The suite runs
through Great Expectations 1.x's Spark engine (not-null, ranges, sets, regex, uniqueness,
column pair, row count, freshness), every expectation passing, so the data commits.
``ratio`` = gated write time / plain write time (target 1.5 or less).
"""

from __future__ import annotations

import shutil

from benchmarks.common import emit, median_times, parse_args, scratch_dir
from lake import Lake, load_settings
from lake.quality.suite import Expectation, Suite

SUITE = Suite("bench", "bench.orders", "fail", (
    Expectation("expect_column_values_to_not_be_null", {"column": "id"}),
    Expectation("expect_column_values_to_not_be_null", {"column": "customer"}),
    Expectation("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 1000}),
    Expectation("expect_column_values_to_be_between", {"column": "quantity", "min_value": 0, "max_value": 100}),
    Expectation("expect_column_values_to_be_in_set", {"column": "channel", "value_set": ["web", "store", "phone"]}),
    Expectation("expect_column_values_to_match_regex", {"column": "customer", "regex": "^c[0-9]+$"}),
    Expectation("expect_column_values_to_be_unique", {"column": "id"}),
    Expectation("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "id", "column_B": "quantity",
                                                                      "or_equal": True}),
    Expectation("expect_table_row_count_to_be_between", {"min_value": 1}),
    Expectation("expect_column_values_to_be_fresh", {"column": "ts", "max_age_days": 30}),
))


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=10_000_000, quick_rows=1_000_000)
    base = scratch_dir("quality")
    settings = load_settings({"root": str(base / "lake"), "spark": {"driver_memory": "6g"}}, env={}, config_file=False)
    lake = Lake(settings, catalog=False)
    spark = lake.spark(app_name="bench-quality")
    df = spark.range(0, args.rows).selectExpr(
        "id", "concat('c', id % 5000) AS customer", "rand(1) * 1000 AS amount", "CAST(id % 100 AS INT) AS quantity",
        "element_at(array('web', 'store', 'phone'), CAST(id % 3 AS INT) + 1) AS channel",
        "current_timestamp() - make_interval(0, 0, 0, 0, 0, CAST(id % 600 AS INT)) AS ts",
    ).cache()
    print(f"rows: {df.count():,} cached")
    counter = {"n": 0}

    def plain() -> None:
        counter["n"] += 1
        lake.table(f"bench.plain_{counter['n']}").write(df)

    def gated() -> None:
        counter["n"] += 1
        lake.table(f"bench.gated_{counter['n']}").write(df, quality=SUITE)

    times = median_times({"gated_write": gated, "plain_write": plain}, args.repeat)
    spark.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "quality",
        "metric": "gated_write_seconds",
        "value": round(times["gated_write"], 3),
        "unit": "s",
        "baseline": "plain_write",
        "ratio": round(times["gated_write"] / times["plain_write"], 3),
        "rows": args.rows,
        "expectations": len(SUITE.expectations),
        "seconds_plain": round(times["plain_write"], 3),
        "target_ratio": 1.5,
    })


if __name__ == "__main__":
    main()
