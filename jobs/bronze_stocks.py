"""bronze.stocks: monthly closing prices from CSV files dropped in <lake root>/landing/stocks/.

Real public data: vega-datasets' stocks table (AAPL, AMZN, GOOG, IBM, MSFT, 2000-2010),
split into yearly files by `make demo`. Incremental: each run ingests only new or
changed files; malformed lines go to quarantine.bronze_stocks.
"""

from lake.pipeline import CsvOptions, FileSource, Job

JOB = Job(
    name="bronze_stocks",
    description="Monthly closing prices per stock symbol, as delivered",
    source=FileSource(
        "landing/stocks/*.csv",
        format="csv",
        columns={"symbol": "VARCHAR", "date": "DATE", "price": "DOUBLE"},
        csv=CsvOptions(date_format="%b %d %Y"),
    ),
    target="bronze.stocks",
    mode="append",
    partition_by=["symbol"],
)
