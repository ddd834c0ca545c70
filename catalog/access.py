"""Who may do what: principals, groups, grants, masking policies per tag, and the audit trail.

The model (after Unity Catalog and Apache Polaris, cut to what a small team needs):

- A **principal** is a ``user``, a ``service`` account or a ``group``; a group's members
  (users, services, other groups) hold everything the group holds.
- A **grant** gives a principal one privilege on one object: ``read``, ``write``, ``manage``
  (``write`` includes ``read``; ``manage`` includes all three and ``unmask``) or ``unmask``.
  Objects form a tree and grants are **inherited downward**: ``lake`` > a layer (``bronze``) >
  a dataset (``bronze.trades``); ``feature_view:NAME`` and ``feature_service:NAME`` sit under
  ``lake``.
- A **masking policy** says how a column carrying a tag leaves the service for a principal
  without ``unmask``: ``null``, ``hash`` (HMAC-SHA256 with a secret salt the service holds,
  never stored) or ``last4``. A column carries a tag directly (``lake catalog tag ... --column``),
  through column lineage from a tagged column, or by name from an upstream dataset whose tag
  propagated down (see :mod:`catalog.tags`).
- The **audit trail**: one row per request that passed the service (principal, action,
  object, version, time, outcome). :class:`AuditLog` writes them off the request path.

:class:`Policy` is what a server asks, per request, from memory: a snapshot of principals,
grants and masks, reloaded every ``cache_seconds`` (or at once after a change it made).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.db import SessionSource
from catalog.errors import AccessError, CatalogError, PrincipalNotFoundError
from catalog.redact import redact_text

log = logging.getLogger(__name__)

KINDS = ("user", "service", "group")
PRIVILEGES = ("read", "write", "manage", "unmask")
METHODS = ("null", "hash", "last4")
LAKE = "lake"
_NAME = re.compile(r"^[\w.@:+\-]{1,255}$")
_OBJECT = re.compile(r"^(?:lake|[A-Za-z_][\w\-]*(?:\.[\w\-.]+)?|(?:feature_view|feature_service):[\w\-.]+)$")
_TAG = re.compile(r"^[\w.:\-]{1,128}$")
# What holding a privilege lets one do: manage covers everything, write covers read.
_COVERS = {"read": {"read", "write", "manage"}, "write": {"write", "manage"}, "manage": {"manage"},
           "unmask": {"unmask", "manage"}}
_STRICTNESS = {"null": 0, "hash": 1, "last4": 2}


def check_name(name: str, what: str = "principal") -> str:
    """A principal's name as given, if allowed (``alice``, ``svc:training``, ``team-ml``)."""
    name = name.strip()
    if not _NAME.match(name):
        raise AccessError(f"{what} {name[:80]!r}: use 1-255 letters, digits and _ . @ : + - (e.g. alice or "
                          "svc:training)")
    return name


def check_object(obj: str) -> str:
    """An object as grants name it: ``lake``, a layer, ``layer.name``, ``feature_view:X``, ``feature_service:X``.

    Raises:
        AccessError: any other text.
    """
    obj = obj.strip()
    if len(obj) > 512 or not _OBJECT.match(obj):
        raise AccessError(f"object {obj[:80]!r}: use lake, a layer (bronze), a dataset (bronze.trades), "
                          "feature_view:NAME or feature_service:NAME")
    return obj


def ancestors(obj: str) -> tuple[str, ...]:
    """``obj`` and every object above it, nearest first (``bronze.trades``, ``bronze``, ``lake``)."""
    if obj == LAKE:
        return (LAKE,)
    if ":" in obj:
        return (obj, LAKE)
    if "." in obj:
        return (obj, obj.split(".", 1)[0], LAKE)
    return (obj, LAKE)


def _check_privilege(privilege: str) -> str:
    privilege = privilege.strip().lower()
    if privilege not in PRIVILEGES:
        raise AccessError(f"privilege {privilege[:40]!r}: use one of {', '.join(PRIVILEGES)}")
    return privilege


# ----------------------------------------------------------------- principals


def principals_exist(session: Session) -> bool:
    """Whether any principal is defined (from then on the service serves nobody anonymously)."""
    return session.scalar(select(m.Principal.name).limit(1)) is not None


def create_principal(session: Session, name: str, kind: str, *, description: str | None = None,
                     created_by: str | None = None) -> dict[str, Any]:
    """Define a user, service account or group.

    Raises:
        AccessError: a bad name or kind, or the name is taken.
    """
    name = check_name(name)
    if kind not in KINDS:
        raise AccessError(f"kind {kind[:20]!r}: use user, service or group")
    if session.get(m.Principal, name) is not None:
        raise AccessError(f"principal {name!r} exists already", principal=name)
    row = m.Principal(name=name, kind=kind, description=description, created_by=created_by, created_at=m.utcnow())
    session.add(row)
    session.flush()
    return _principal(row, [])


def _principal(row: m.Principal, groups: list[str]) -> dict[str, Any]:
    return {"name": row.name, "kind": row.kind, "description": row.description, "created_by": row.created_by,
            "created_at": row.created_at, "groups": groups}


def find_principal(session: Session, name: str) -> m.Principal:
    row = session.get(m.Principal, name.strip())
    if row is None:
        raise PrincipalNotFoundError(f"no principal {name[:80]!r}; `lake principal list` shows them", principal=name[:80])
    return row


def delete_principal(session: Session, name: str) -> None:
    """Remove a principal, its memberships and grants; its tokens are revoked."""
    row = find_principal(session, name)
    now = m.utcnow()
    for token in session.scalars(select(m.ApiToken).where(m.ApiToken.principal == row.name,
                                                          m.ApiToken.revoked_at.is_(None))):
        token.revoked_at = now
    session.execute(delete(m.Grant).where(m.Grant.principal == row.name))
    session.execute(delete(m.GroupMember).where((m.GroupMember.group == row.name) | (m.GroupMember.member == row.name)))
    session.delete(row)
    session.flush()


def principals(session: Session) -> list[dict[str, Any]]:
    """Every principal with the groups it belongs to directly."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for group, member in session.execute(select(m.GroupMember.group, m.GroupMember.member).order_by(m.GroupMember.group)):
        groups[member].append(group)
    return [_principal(r, groups[r.name]) for r in session.scalars(select(m.Principal).order_by(m.Principal.name))]


def add_member(session: Session, group: str, member: str) -> None:
    """Put ``member`` in ``group`` (both defined; the group of kind ``group``)."""
    g, p = find_principal(session, group), find_principal(session, member)
    if g.kind != "group":
        raise AccessError(f"{g.name!r} is a {g.kind}, not a group", principal=g.name)
    if g.name == p.name:
        raise AccessError(f"a group cannot contain itself ({g.name!r})")
    if session.get(m.GroupMember, (g.name, p.name)) is None:
        session.add(m.GroupMember(group=g.name, member=p.name))
        session.flush()


def remove_member(session: Session, group: str, member: str) -> bool:
    """Take ``member`` out of ``group``; False if it was not in it."""
    done = session.execute(delete(m.GroupMember).where(m.GroupMember.group == group.strip(),
                                                       m.GroupMember.member == member.strip()))
    return bool(getattr(done, "rowcount", 0))


# --------------------------------------------------------------------- grants


def grant(session: Session, principal: str, privilege: str, obj: str, *, granted_by: str | None = None) -> bool:
    """Give ``principal`` ``privilege`` on ``obj`` (and below); False if it held exactly that already."""
    row = find_principal(session, principal)
    privilege, obj = _check_privilege(privilege), check_object(obj)
    if session.get(m.Grant, (row.name, privilege, obj)) is not None:
        return False
    session.add(m.Grant(principal=row.name, privilege=privilege, object=obj, granted_by=granted_by,
                        granted_at=m.utcnow()))
    session.flush()
    return True


def revoke(session: Session, principal: str, privilege: str, obj: str) -> bool:
    """Take back exactly that grant; False if there was none (a grant higher up still applies)."""
    privilege, obj = _check_privilege(privilege), check_object(obj)
    done = session.execute(delete(m.Grant).where(m.Grant.principal == principal.strip(),
                                                 m.Grant.privilege == privilege, m.Grant.object == obj))
    return bool(getattr(done, "rowcount", 0))


def grants(session: Session, *, principal: str | None = None, obj: str | None = None) -> list[dict[str, Any]]:
    """Grants as stored, filtered by principal and/or by an object (its ancestors' grants included)."""
    q = select(m.Grant).order_by(m.Grant.object, m.Grant.principal, m.Grant.privilege)
    if principal is not None:
        q = q.where(m.Grant.principal == principal.strip())
    if obj is not None:
        q = q.where(m.Grant.object.in_(ancestors(check_object(obj))))
    return [{"principal": g.principal, "privilege": g.privilege, "object": g.object, "granted_by": g.granted_by,
             "granted_at": g.granted_at} for g in session.scalars(q)]


# ------------------------------------------------------------------- masking


def set_mask(session: Session, tag: str, method: str) -> None:
    """Columns carrying ``tag`` leave the service masked by ``method`` for principals without ``unmask``."""
    tag = tag.strip()
    if not _TAG.match(tag):
        raise AccessError(f"tag {tag[:80]!r}: use 1-128 letters, digits and _ . : -")
    if method not in METHODS:
        raise AccessError(f"masking method {method[:20]!r}: use null, hash or last4")
    row = session.get(m.MaskPolicy, tag)
    if row is None:
        session.add(m.MaskPolicy(tag=tag, method=method, updated_at=m.utcnow()))
    else:
        row.method, row.updated_at = method, m.utcnow()
    session.flush()


def drop_mask(session: Session, tag: str) -> bool:
    done = session.execute(delete(m.MaskPolicy).where(m.MaskPolicy.tag == tag.strip()))
    return bool(getattr(done, "rowcount", 0))


def masks(session: Session) -> dict[str, str]:
    """``{tag: method}`` of every masking policy."""
    return {t: k for t, k in session.execute(select(m.MaskPolicy.tag, m.MaskPolicy.method))}


# --------------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditEntry:
    """One audited request."""

    principal: str | None
    action: str
    object: str | None
    outcome: str
    version: int | None = None
    detail: str | None = None
    at: dt.datetime = field(default_factory=m.utcnow)

    def row(self) -> dict[str, Any]:
        return {"at": self.at, "principal": (self.principal or "")[:255] or None, "action": self.action[:32],
                "object": self.object[:512] if self.object else None, "version": self.version,
                "outcome": self.outcome[:16], "detail": redact_text(self.detail)[:2000] if self.detail else None}


def write_audit(session: Session, entries: Iterable[AuditEntry]) -> int:
    rows = [e.row() for e in entries]
    if rows:
        session.execute(insert(m.AuditRecord), rows)
    return len(rows)


def audit_records(session: Session, *, principal: str | None = None, obj: str | None = None,
                  since: dt.datetime | None = None, action: str | None = None, outcome: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """Audit records, newest first; ``obj`` matches the object and everything below it."""
    q = select(m.AuditRecord).order_by(m.AuditRecord.at.desc(), m.AuditRecord.id.desc()).limit(max(1, min(limit, 10_000)))
    if principal is not None:
        q = q.where(m.AuditRecord.principal == principal)
    if obj is not None and obj != LAKE:
        q = q.where((m.AuditRecord.object == obj) | m.AuditRecord.object.startswith(obj + ".", autoescape=True))
    if since is not None:
        q = q.where(m.AuditRecord.at >= since)
    if action is not None:
        q = q.where(m.AuditRecord.action == action)
    if outcome is not None:
        q = q.where(m.AuditRecord.outcome == outcome)
    return [{"at": r.at, "principal": r.principal, "action": r.action, "object": r.object, "version": r.version,
             "outcome": r.outcome, "detail": r.detail} for r in session.scalars(q)]


class AuditLog:
    """Audit entries written by a background thread in batches, so a request pays an append.

    Args:
        source: the catalog to write to.
        interval: seconds between two writes.
        max_pending: entries kept while the database is away; older ones are counted as dropped.
    """

    def __init__(self, source: SessionSource, *, interval: float = 1.0, max_pending: int = 100_000) -> None:
        self.source = source
        self.interval = interval
        self.dropped = 0
        self.written = 0
        # Raw tuples: a request pays one append; the entries are built when written.
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=max_pending)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="lake-audit", daemon=True)
        self._thread.start()

    def record(self, principal: str | None, action: str, obj: str | None, outcome: str, *,
               version: int | None = None, detail: str | None = None) -> None:
        """Queue one entry (written within ``interval`` seconds)."""
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append((principal, action, obj, outcome, version, detail, time.time()))

    def flush(self) -> None:
        """Write everything queued now (tests, shutdown)."""
        with self._lock:
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            if not batch:
                return
            try:
                with self.source.writing() as s:
                    self.written += write_audit(s, [
                        AuditEntry(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], dt.datetime.fromtimestamp(raw[6], dt.UTC))
                        for raw in batch])
            except CatalogError as exc:
                log.warning("audit: %d entries kept for later: %s", len(batch), exc)
                self._pending.extendleft(reversed(batch))
                raise

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except CatalogError:
                time.sleep(self.interval)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except CatalogError:
            log.error("audit: %d entries could not be written", len(self._pending))


# --------------------------------------------------------------------- policy


class Claimant(str):
    """A principal's name that carries the groups its credential vouched for (a JWT's groups claim).

    The claim travels with the request that presented the token, never with the name: the same name
    authenticated otherwise (a lake token, a JWT without the groups) holds only what the catalog gives it.
    Those that name a ``group`` principal in the catalog give their grants; the others are ignored.
    """

    claimed: frozenset[str]

    def __new__(cls, name: str, claimed: Iterable[str] = ()) -> Claimant:
        self = super().__new__(cls, name)
        self.claimed = frozenset(g for g in claimed if isinstance(g, str) and g)
        return self


def claimed_groups(principal: str | None) -> frozenset[str]:
    """The groups ``principal`` was vouched for by its credential (empty but for a :class:`Claimant`)."""
    return principal.claimed if isinstance(principal, Claimant) else frozenset()


@dataclass
class Snapshot:
    """Principals, grants and masks as of one moment, with what was derived from them since."""

    kinds: dict[str, str]
    member_of: dict[str, set[str]]
    held: dict[str, dict[str, set[str]]]
    """principal -> object -> privileges granted directly."""
    masks: dict[str, str]
    tagged: dict[int, dict[str, set[str]]]
    """dataset id -> column -> masking tags set on it."""
    upstream: dict[tuple[int, str], set[tuple[int, str]]]
    """(dataset id, column) -> the columns it was derived from (column lineage)."""
    propagated: dict[int, set[tuple[str, int]]]
    """dataset id -> (masking tag, origin dataset id) that propagated to it."""
    ids: dict[tuple[str, str], int]
    columns: dict[int, list[str]]
    loaded_at: float
    closures: dict[tuple[str, frozenset[str]], frozenset[str]] = field(default_factory=dict)
    masked: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def closure(self, principal: str, claimed: frozenset[str] = frozenset()) -> frozenset[str]:
        """The principal and every group it belongs to, transitively: by the catalog's memberships, and
        through ``claimed`` (the groups an identity provider vouched for) where they name catalog groups."""
        key = (principal, claimed)  # a frozenset keeps its hash: a hit costs no walk over the claim
        hit = self.closures.get(key)
        if hit is None:
            start = [principal, *(g for g in claimed if self.kinds.get(g) == "group")]
            seen, todo = set(start), list(start)
            while todo:
                for group in self.member_of.get(todo.pop(), ()):
                    if group not in seen:
                        seen.add(group)
                        todo.append(group)
            if len(self.closures) > 100_000:  # claimed sets come from tokens: keep the cache bounded
                self.closures.clear()
            hit = self.closures[key] = frozenset(seen)
        return hit

    def allows(self, principal: str, action: str, obj: str, claimed: frozenset[str] = frozenset()) -> bool:
        needed = _COVERS[action]
        chain = ancestors(obj)
        for who in self.closure(principal, claimed):
            held = self.held.get(who)
            if held and any(held.get(o, set()) & needed for o in chain):
                return True
        return False

    def masked_columns(self, namespace: str, name: str) -> dict[str, str]:
        key = (namespace, name)
        hit = self.masked.get(key)
        if hit is not None:
            return hit
        out: dict[str, str] = {}
        ds = self.ids.get(key)
        if ds is not None and self.masks:
            for col in self.columns.get(ds, []):
                tags = self._column_tags(ds, col)
                if tags:
                    out[col] = min((self.masks[t] for t in tags), key=_STRICTNESS.__getitem__)
        self.masked[key] = out
        return out

    def _column_tags(self, ds: int, col: str) -> set[str]:
        """Masking tags a column carries: set on it, or on a column it derives from, by column lineage or,
        where a tag propagated from an upstream dataset, on that dataset's column of the same name."""
        tags: set[str] = set()
        start: tuple[int, str, frozenset[str] | None] = (ds, col, None)
        seen, todo = {start}, [start]
        while todo:
            node_ds, node_col, only = todo.pop()
            found = self.tagged.get(node_ds, {}).get(node_col, set())
            tags |= found if only is None else found & only
            parents: list[tuple[int, str, frozenset[str] | None]] = [
                (p_ds, p_col, only) for p_ds, p_col in self.upstream.get((node_ds, node_col), ())]
            for tag, origin in self.propagated.get(node_ds, ()):
                if only is None or tag in only:
                    parents.append((origin, node_col, frozenset({tag})))
            for parent in parents:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return tags


def load_snapshot(session: Session) -> Snapshot:
    """Everything :class:`Policy` decides from, in a few queries."""
    kinds = {n: k for n, k in session.execute(select(m.Principal.name, m.Principal.kind))}
    member_of: dict[str, set[str]] = collections.defaultdict(set)
    for group, member in session.execute(select(m.GroupMember.group, m.GroupMember.member)):
        member_of[member].add(group)
    held: dict[str, dict[str, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
    for who, privilege, obj in session.execute(select(m.Grant.principal, m.Grant.privilege, m.Grant.object)):
        held[who][obj].add(privilege)
    mask_of = masks(session)
    tagged: dict[int, dict[str, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
    upstream: dict[tuple[int, str], set[tuple[int, str]]] = collections.defaultdict(set)
    propagated: dict[int, set[tuple[str, int]]] = collections.defaultdict(set)
    ids: dict[tuple[str, str], int] = {}
    columns: dict[int, list[str]] = collections.defaultdict(list)
    if mask_of:
        for ds, col, tag in session.execute(
                select(m.Column.dataset_id, m.Column.name, m.ColumnTag.tag)
                .join(m.ColumnTag, m.ColumnTag.column_id == m.Column.id).where(m.ColumnTag.tag.in_(mask_of))):
            tagged[ds][col].add(tag)
        for src, src_col, dst, dst_col in session.execute(select(
                m.ColumnLineage.src_dataset_id, m.ColumnLineage.src_column, m.ColumnLineage.dst_dataset_id,
                m.ColumnLineage.dst_column)):
            upstream[(dst, dst_col)].add((src, src_col))
        for ds, tag, origin in session.execute(select(m.DatasetTag.dataset_id, m.DatasetTag.tag, m.DatasetTag.source_id)
                                               .where(m.DatasetTag.tag.in_(mask_of), m.DatasetTag.source_id != 0)):
            propagated[ds].add((tag, origin))
        for ds, namespace, name in session.execute(select(m.Dataset.id, m.Dataset.namespace, m.Dataset.name)):
            ids[(namespace, name)] = ds
        for ds, col in session.execute(select(m.Column.dataset_id, m.Column.name).order_by(m.Column.position)):
            columns[ds].append(col)
    return Snapshot(kinds, dict(member_of), {k: dict(v) for k, v in held.items()}, mask_of,
                    {k: dict(v) for k, v in tagged.items()}, dict(upstream), dict(propagated), ids, dict(columns),
                    time.monotonic())


class Policy:
    """Grants and masks as a server checks them: from a snapshot reloaded every ``cache_seconds``.

    Args:
        source: the catalog.
        cache_seconds: how long a snapshot is trusted (a grant changed elsewhere takes effect
            within it; one changed through :meth:`invalidate` at once).
    """

    def __init__(self, source: SessionSource, *, cache_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._refreshing = threading.Event()

    def closure(self, principal: str | None) -> frozenset[str]:
        """The principal and the groups it belongs to (catalog memberships, and the groups a :class:`Claimant`
        carries)."""
        if principal is None:
            return frozenset()
        return self.snapshot().closure(principal, claimed_groups(principal))

    def snapshot(self) -> Snapshot:
        """The current snapshot. Once one exists, an expired one is reloaded by a background thread while
        requests keep using it (a request never waits for the database), unless ``cache_seconds`` is 0."""
        snap = self._snapshot
        if snap is not None and self._clock() - snap.loaded_at < self.cache_seconds:
            return snap
        if snap is not None and self.cache_seconds > 0:
            if not self._refreshing.is_set():
                self._refreshing.set()
                threading.Thread(target=self._refresh, name="lake-policy", daemon=True).start()
            return snap
        return self._load()

    def _load(self) -> Snapshot:
        with self._lock:
            with self.source.reading() as s:
                snap = load_snapshot(s)
            snap.loaded_at = self._clock()
            self._snapshot = snap
            return snap

    def _refresh(self) -> None:
        try:
            self._load()
        except CatalogError as exc:  # the database is away: keep the last snapshot, try again later
            log.warning("policy: cannot reload grants: %s", exc)
        finally:
            self._refreshing.clear()

    def invalidate(self) -> None:
        """Forget the snapshot: the next request reloads it (a change made through this server)."""
        self._snapshot = None

    def enforced(self) -> bool:
        """Whether any principal exists (before that, an embedded lake: nothing is enforced)."""
        return bool(self.snapshot().kinds)

    def allows(self, principal: str | None, action: str, obj: str) -> bool:
        """Whether ``principal`` may ``action`` (read, write, manage, unmask) on ``obj``.

        Before any principal exists everything is allowed; afterwards an unknown or anonymous
        principal may do nothing.
        """
        snap = self.snapshot()
        if not snap.kinds:
            return True
        if principal is None:
            return False
        claimed = claimed_groups(principal)
        if principal not in snap.kinds and not claimed:
            return False
        return snap.allows(principal, action, obj, claimed)

    def masked_columns(self, dataset: str, namespace: str = "lake") -> dict[str, str]:
        """``{column: method}`` of a dataset's columns that carry a masking tag (directly or derived)."""
        return self.snapshot().masked_columns(namespace, dataset)

    def mask_for(self, principal: str | None, dataset: str, namespace: str = "lake",
                 obj: str | None = None) -> dict[str, str]:
        """The columns to mask for ``principal`` reading ``dataset`` (empty with ``unmask`` on ``obj``)."""
        columns = self.masked_columns(dataset, namespace)
        if not columns or self.allows(principal, "unmask", obj or dataset):
            return {}
        return columns


def count_principals(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(m.Principal)) or 0)
