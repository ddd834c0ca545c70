"""silver.stock_prices: one clean, typed price per symbol and month (latest delivery wins)."""

from lake.pipeline import Job, TableSource

JOB = Job(
    name="silver_stock_prices",
    description="Cleaned monthly prices: positive, deduplicated per symbol and month",
    source=TableSource(
        tables=["bronze.stocks"],
        sql="""
            SELECT symbol, date, price, _source_file AS source_file
            FROM (
                SELECT *, row_number() OVER (PARTITION BY symbol, date ORDER BY _ingested_at DESC) AS rn
                FROM bronze.stocks
                WHERE symbol IS NOT NULL AND date IS NOT NULL AND price > 0
            ) WHERE rn = 1
        """,
    ),
    target="silver.stock_prices",
    mode="overwrite",
)
