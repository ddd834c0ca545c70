"""Features of the example pipeline: per-symbol monthly stock features from gold.stock_features.

Sources name lake tables (``gold.stock_features``); ``lake features apply`` resolves them
to the table's location on whatever lake the settings point at (local folder or S3).
"""

from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

symbol = Entity(name="symbol", join_keys=["symbol"], value_type=ValueType.STRING,
                description="A stock ticker symbol (MSFT, AMZN, IBM, GOOG, AAPL)")

stock_source = FileSource(
    name="gold_stock_features",
    path="gold.stock_features",
    file_format=DeltaFormat(),
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
)

stock_features = FeatureView(
    name="stock_features",
    entities=[symbol],
    ttl=timedelta(days=62),
    schema=[
        Field(name="price", dtype=Float64, description="Closing price of the month"),
        Field(name="return_1m", dtype=Float64, description="Return over the previous month"),
        Field(name="ma_3m", dtype=Float64, description="3-month moving average of the price"),
        Field(name="volatility_6m", dtype=Float64, description="Standard deviation of 6 monthly returns"),
    ],
    source=stock_source,
    online=True,
    owner="quant-team@example.com",
    tags={"team": "quant"},
    description="Monthly price features per symbol",
)


@on_demand_feature_view(
    sources=[stock_features],
    schema=[Field(name="price_vs_ma", dtype=Float64)],
    description="How far the price is above its 3-month average",
)
def price_signals(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["price_vs_ma"] = inputs["price"] / inputs["ma_3m"] - 1.0
    return out


stock_model_v1 = FeatureService(
    name="stock_model_v1",
    features=[stock_features[["price", "return_1m", "volatility_6m"]], price_signals],
    description="Features of the first stock-return model",
)
