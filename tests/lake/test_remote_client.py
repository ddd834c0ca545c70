"""The service client reads what comes over the network as untrusted: unreadable or invalid Arrow streams,
and rows of another version than the one asked for, are a ServiceError (never a traceback or bad rows)."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pyarrow as pa
import pytest

from lake.errors import LakeWarning, ServiceError
from lake.remote import ServiceClient

GOOD = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})


def _ipc(*batches: pa.RecordBatch, schema: pa.Schema | None = None) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema or batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def _client(body: bytes, version: str = "4") -> ServiceClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/vnd.apache.arrow.stream",
                                                          "x-lake-version": version})

    return ServiceClient("https://lake.test", "t", transport=httpx.MockTransport(answer))


def test_a_good_stream_reads_whole_and_in_batches() -> None:
    body = _ipc(*GOOD.to_batches(max_chunksize=2))
    assert _client(body).load("gold.x", version=4).equals(GOOD)
    assert pa.Table.from_batches(list(_client(body).stream("gold.x", version=4))).equals(GOOD)
    empty = _client(_ipc(schema=GOOD.schema)).load("gold.x")
    assert empty.schema == GOOD.schema and empty.num_rows == 0


@pytest.mark.parametrize("body", [
    b"not arrow at all",
    b"",
    _ipc(*GOOD.to_batches())[:-20],  # cut inside a batch's body: a bare OSError from Arrow
    _ipc(*GOOD.to_batches())[:40],
    _ipc(pa.record_batch([pa.array([b"\xff\xfe", b"ok"], pa.binary()).view(pa.string())], names=["s"])),  # bad UTF-8
])
def test_unreadable_or_invalid_streams_are_service_errors(body: bytes) -> None:
    with pytest.raises(ServiceError, match="unreadable stream"):
        _client(body).load("gold.x")
    with pytest.raises(ServiceError, match="unreadable stream"):
        list(_client(body).stream("gold.x"))


def test_rows_of_another_version_are_refused() -> None:
    body = _ipc(*GOOD.to_batches())
    with pytest.raises(ServiceError, match="version 5 of gold.x for version 4"):
        _client(body, version="5").load("gold.x", version=4)
    with pytest.raises(ServiceError, match="version 5 of gold.x for version 4"):
        list(_client(body, version="5").stream("gold.x", version=4))
    assert _client(body, version="5").load("gold.x").num_rows == 3  # no version asked: the newest


@pytest.mark.parametrize("meta", [[], {"kind": "curated"}, {"kind": "curated", "name": "gold.x", "table": "gold.x",
                                                             "version": "v", "location": "", "row_count": 1,
                                                             "content_hash": "", "columns": []},
                                  {"kind": "curated", "name": "gold.x", "table": "gold.x", "version": 1, "location": "",
                                   "row_count": 1, "content_hash": "", "columns": [3]},
                                  *({"kind": "curated", "name": "gold.x", "table": "gold.x", "version": 1, "location": "",
                                     "row_count": 1, "content_hash": "", "columns": [], "arrow_schema": bad}
                                    for bad in ("not base64!", "Z2FyYmFnZSBnYXJiYWdl", 7))])
def test_metadata_that_is_not_a_load_description_is_a_service_error(meta: object) -> None:
    from typing import Any, cast

    from lake.handoff.remote import RemoteDataset

    client = ServiceClient("https://lake.test", "t", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=meta)))
    with pytest.raises(ServiceError, match="not what a load describes"):
        RemoteDataset.open(cast(Any, None), client, "gold.x", None)


def test_metadata_of_another_version_is_refused() -> None:
    from typing import Any, cast

    from lake.handoff.remote import RemoteDataset

    meta = {"kind": "curated", "name": "gold.x", "table": "gold.x", "version": 5, "location": "", "row_count": 1,
            "content_hash": "", "columns": [{"name": "id", "type": "int64", "nullable": True, "masked": "hash"}]}
    client = ServiceClient("https://lake.test", "t", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=meta)))
    ds = RemoteDataset.open(cast(Any, None), client, "gold.x", 5)
    assert ds.masked == {"id": "hash"}
    meta["arrow_schema"] = base64.b64encode(pa.schema([("id", pa.string())]).serialize().to_pybytes()).decode()
    assert RemoteDataset.open(cast(Any, None), client, "gold.x", 5).schema == pa.schema([("id", pa.string())])
    with pytest.raises(ServiceError, match="version 5 of gold.x for version 4"):
        RemoteDataset.open(cast(Any, None), client, "gold.x", 4)


def test_a_split_key_masked_since_the_dataset_was_opened_is_refused() -> None:
    """Masks can change between the metadata and the rows (a grant revoked): the rows' answer says what it
    masks, and a split keyed by one of those columns is refused instead of splitting masked values."""
    from typing import Any, cast

    from lake.errors import SplitError
    from lake.handoff import SplitSpec
    from lake.handoff.remote import RemoteDataset

    rows = pa.table({"id": list(range(20)), "k": [f"v{i}" for i in range(20)]})
    meta = {"kind": "curated", "name": "gold.x", "table": "gold.x", "version": 2, "location": "", "row_count": 20,
            "content_hash": "", "columns": [{"name": "id", "type": "int64", "nullable": True},
                                            {"name": "k", "type": "string", "nullable": True}],
            "arrow_schema": base64.b64encode(rows.schema.serialize().to_pybytes()).decode()}
    masked_now = ["k"]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json=meta)
        wanted = request.url.params.get("columns")
        body = rows.select(wanted.split(",")) if wanted else rows
        return httpx.Response(200, content=_ipc(*body.to_batches()), headers={
            "x-lake-version": "2", "x-lake-masked": json.dumps(masked_now)})

    client = ServiceClient("https://lake.test", "t", transport=httpx.MockTransport(answer))
    ds = RemoteDataset.open(cast(Any, None), client, "gold.x", None)
    assert ds.masked == {}  # unmasked when opened
    by_k, by_id = SplitSpec.parse("train=0.5,test=0.5", keys="k"), SplitSpec.parse("train=0.5,test=0.5", keys="id")
    with pytest.raises(SplitError, match=r"\['k'\] of gold.x now reach you masked"):
        ds.to_arrow(splits=by_k, split="train")
    with pytest.raises(SplitError, match="now reach you masked"):
        ds.split_counts(by_k)
    assert sum(ds.split_counts(by_id).values()) == 20
    assert ds.to_arrow().num_rows == 20  # no split: nothing to refuse
    masked_now.clear()
    assert sum(ds.split_counts(by_k).values()) == 20


def test_names_are_escaped_in_paths_and_a_token_over_plain_http_is_warned_of() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json={"name": "x"})

    client = ServiceClient("https://lake.test", "t", transport=httpx.MockTransport(answer))
    client.show("gold.x/../../admin?y=1#z")
    assert seen == [b"/api/v1/datasets/gold.x%2F..%2F..%2Fadmin%3Fy%3D1%23z"]
    with pytest.warns(LakeWarning, match="unencrypted"):
        ServiceClient("http://lake.example.com:8080", "t")
    for quiet in ("http://127.0.0.1:8080", "https://lake.example.com"):  # loopback, or TLS: nothing to say
        ServiceClient(quiet, "t").close()
    ServiceClient("http://lake.example.com:8080").close()  # no token, nothing sent
