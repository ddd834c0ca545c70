"""gold.stock_features: per-symbol monthly features for the feature store (entity: symbol)."""

from lake.pipeline import Job, TableSource

JOB = Job(
    name="gold_stock_features",
    description="Per symbol and month: price, 1-month return, 3-month moving average, 6-month volatility",
    source=TableSource(
        tables=["silver.stock_prices"],
        sql="""
            WITH r AS (
                SELECT symbol, date, price,
                       price / lag(price) OVER (PARTITION BY symbol ORDER BY date) - 1 AS return_1m,
                       avg(price) OVER (PARTITION BY symbol ORDER BY date
                                        ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS ma_3m
                FROM silver.stock_prices
            )
            SELECT symbol, CAST(date AS TIMESTAMP) AS event_timestamp, price, return_1m, ma_3m,
                   stddev_samp(return_1m) OVER (PARTITION BY symbol ORDER BY date
                                                ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS volatility_6m,
                   current_timestamp() AS created_timestamp
            FROM r
        """,
    ),
    target="gold.stock_features",
    mode="overwrite",
)
