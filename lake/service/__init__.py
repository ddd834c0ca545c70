"""``lake serve``: the backbone as one service for a team.

A REST API (with its OpenAPI document) over the catalog, the OpenLineage endpoint, queries and
previews, optionally the feature server; bearer tokens or OIDC JWTs; grants checked on every
endpoint; sensitive columns masked for principals without ``unmask``; every request audited.
"""
