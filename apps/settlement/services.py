"""Settlement runs: each interval settled exactly once, then corrected by new revisions.

A run reads the interval's metered energy (main meters only), P2P trades and tariffs,
applies the rule set, stores one MemberSettlement per member with its inputs and their
hash, and books one balanced ledger transaction per member (idempotency key
``settlement:<interval>:<member>:r<revision>``), all in one database transaction under the
interval's SettledInterval row lock. A correction reverses the standing transaction and
books the new revision. The ledger is sealed after each run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from apps.common.clock import format_instant
from apps.common.exceptions import Conflict
from apps.common.intervals import coop_zone, floor_to_interval, interval_length
from apps.ledger import selectors as ledger_selectors
from apps.ledger import services as ledger
from apps.ledger.choices import CoopAccount
from apps.market import forecast
from apps.market import selectors as market_selectors
from apps.market import services as market_services
from apps.members.models import Member
from apps.meters import selectors as meter_selectors
from apps.settlement import rules
from apps.settlement.locks import settled_interval_lock
from apps.settlement.models import CorrectionCursor, MemberSettlement, RuleSet, SettledInterval

if TYPE_CHECKING:
    from apps.ledger.models import Account

logger = logging.getLogger(__name__)

LEDGER_KIND = "settlement"


def rule_set_current() -> RuleSet:
    """The rule set new settlements use (SETTLEMENT_MODE), created on first use."""
    mode = settings.SETTLEMENT_MODE
    if mode not in rules.RULE_VERSIONS:
        raise Conflict(f"Unknown SETTLEMENT_MODE {mode!r}.", code="settlement_mode")
    name, text = rules.RULES_TEXT[mode]
    rule_set, _ = RuleSet.objects.get_or_create(
        version=rules.RULE_VERSIONS[mode], defaults={"name": name, "text": text}
    )
    return rule_set


def _mode_of(version: int) -> str:
    return next(mode for mode, v in rules.RULE_VERSIONS.items() if v == version)


@dataclass(frozen=True)
class IntervalInputs:
    tariffs: rules.Tariffs
    members: dict[int, rules.MemberInputs]
    complete: bool  # every member's main meters reported (nothing estimated by settlement)


def _tariffs(start: dt.datetime) -> rules.Tariffs:
    t = market_selectors.interval_tariff(start=start)
    return rules.Tariffs(
        retail=t.retail_price,
        feed_in=t.feed_in_price,
        imbalance=t.imbalance_price,
        network_fee=t.network_fee,
        coop_fee=t.coop_fee,
    )


def _estimate_missing(start: dt.datetime, member_ids: set[int]) -> dict[int, tuple[int, int]]:
    """Import and export of members without data, from their like-day history (forecast)."""
    if not member_ids:
        return {}
    tz = coop_zone()
    history = meter_selectors.members_interval_energy(
        start=start - dt.timedelta(days=forecast.LOOKBACK_DAYS), end=start
    )
    estimates = {}
    for member_id in member_ids:
        rows = history.get(member_id, {})
        imp = forecast.net_forecast_wh(start, {k: v.import_wh for k, v in rows.items()}, tz)
        exp = forecast.net_forecast_wh(start, {k: v.export_wh for k, v in rows.items()}, tz)
        estimates[member_id] = (max(imp or 0, 0), max(exp or 0, 0))
    return estimates


def interval_inputs(*, start: dt.datetime) -> IntervalInputs:
    """Everything the interval's settlement is computed from (a handful of grouped queries)."""
    end = start + interval_length()
    energy = meter_selectors.members_interval_energy(start=start, end=end)
    trades = market_selectors.trade_totals_by_member(start=start)
    population = meter_selectors.members_with_main_meters(start=start, end=end) | set(trades) | set(energy)
    missing = {m for m in population if start not in energy.get(m, {})}
    estimates = _estimate_missing(start, missing)
    members: dict[int, rules.MemberInputs] = {}
    for member_id in population:
        measured = energy.get(member_id, {}).get(start)
        if measured is not None:
            imp, exp, estimated = measured.import_wh, measured.export_wh, measured.estimated
        else:
            imp, exp = estimates.get(member_id, (0, 0))
            estimated = True
        t = trades.get(member_id, market_selectors.MemberTradeTotals())
        members[member_id] = rules.MemberInputs(
            import_wh=imp,
            export_wh=exp,
            bought_wh=t.bought_wh,
            sold_wh=t.sold_wh,
            p2p_cost=t.p2p_cost,
            p2p_revenue=t.p2p_revenue,
            estimated=estimated,
        )
    return IntervalInputs(tariffs=_tariffs(start), members=members, complete=not missing)


@dataclass(frozen=True)
class IntervalLines:
    lines: dict[int, rules.Lines]
    hashes: dict[int, str]
    tariffs: rules.Tariffs
    load_wh: int = 0
    gen_wh: int = 0


def interval_lines(*, inputs: IntervalInputs, rule_version: int) -> IntervalLines:
    """Apply the rule set to every member of the interval. Community modes price the whole
    community at once, so their hashes include its totals: one member's late reading changes
    everyone's prices, and everyone gets a correction."""
    mode = _mode_of(rule_version)
    if mode == "p2p":
        return IntervalLines(
            lines={m: rules.settle_member_v1(i, inputs.tariffs) for m, i in inputs.members.items()},
            hashes={m: rules.inputs_hash(i, inputs.tariffs, rule_version) for m, i in inputs.members.items()},
            tariffs=inputs.tariffs,
        )
    nets = [i.import_wh - i.export_wh for i in inputs.members.values()]
    load = sum(n for n in nets if n > 0)
    gen = -sum(n for n in nets if n < 0)
    buy, sell = rules.community_prices(mode, load, gen, inputs.tariffs)
    extra = f"{load}:{gen}"
    return IntervalLines(
        lines={m: rules.settle_member_community(i, buy, sell) for m, i in inputs.members.items()},
        hashes={m: rules.inputs_hash(i, inputs.tariffs, rule_version, extra) for m, i in inputs.members.items()},
        tariffs=inputs.tariffs,
        load_wh=load,
        gen_wh=gen,
    )


def _postings(lines: rules.Lines, member_account: Account, coop: dict[str, Account]) -> list[tuple[Account, Decimal]]:
    candidates = [
        (member_account, -lines.total),
        (coop[CoopAccount.P2P_CLEARING], lines.p2p_cost - lines.p2p_revenue),
        (coop[CoopAccount.GRID_PURCHASES], lines.grid_cost),
        (coop[CoopAccount.GRID_SALES], -lines.grid_credit),
        (coop[CoopAccount.NETWORK_FEES], lines.network_fee),
        (coop[CoopAccount.COOP_FEES], lines.coop_fee),
    ]
    return [(account, amount) for account, amount in candidates if amount != 0]


def _coop_accounts() -> dict[str, Account]:
    return {code: ledger.coop_account(code=code) for code in CoopAccount.values}


def _key(start: dt.datetime, member: Member, revision: int) -> str:
    return f"settlement:{format_instant(start)}:{member.number}:r{revision}"


@dataclass
class SettleReport:
    interval_start: dt.datetime
    members: int = 0
    booked: int = 0
    corrected: int = 0
    estimated: int = 0
    already: bool = False


def interval_settle(*, start: dt.datetime, now: dt.datetime) -> SettleReport:
    """Settle the interval once; a second call (or a concurrent one) books nothing."""
    if start + interval_length() > now:
        raise Conflict("The interval has not ended yet.", code="interval_not_ended")
    report = SettleReport(interval_start=start)
    rule_set = rule_set_current()
    with transaction.atomic():
        # The unique row is the lock: a concurrent run blocks on its insert until this
        # transaction ends, then finds it and books nothing.
        row, created = SettledInterval.objects.get_or_create(
            interval_start=start, defaults={"first_settled_at": now, "rule_version": rule_set.version}
        )
        if not created:
            report.already = True
            return report
        inputs = interval_inputs(start=start)
        computed = interval_lines(inputs=inputs, rule_version=rule_set.version)
        report.members = len(inputs.members)
        report.booked = _book(
            start=start, inputs=inputs, computed=computed, members=set(inputs.members), revisions={}, now=now,
            rule_version=rule_set.version,
        )  # fmt: skip
        report.estimated = sum(1 for i in inputs.members.values() if i.estimated)
        row.estimated = report.estimated > 0
        row.save(update_fields=["estimated"])
        _interval_entries_book(start=start, computed=computed, revision=1, previous_revision=None)
        market_services.interval_mark_settled(start=start)
    transaction.on_commit(_seal, robust=True)
    return report


def _interval_entries_book(
    *, start: dt.datetime, computed: IntervalLines, revision: int, previous_revision: int | None
) -> None:
    """The coop's interval-level bookings: the pay-as-bid spread (P2P mode) or the community's
    grid cost and rounding (community modes), reversed and rebooked with each revision."""
    coop = _coop_accounts()
    stem = f"settlement:{format_instant(start)}:interval"
    if previous_revision is not None:
        previous = ledger_selectors.transaction_find(idempotency_key=f"{stem}:r{previous_revision}")
        if previous is not None:
            ledger.transaction_reverse(
                transaction=previous,
                idempotency_key=f"{stem}:r{previous_revision}:reversal",
                description=f"Reversal of the interval booking of {format_instant(start)} r{previous_revision}",
                occurred_at=start,
            )
    postings: list[tuple[Account, Decimal]] = []
    if computed.load_wh or computed.gen_wh:
        collected = sum((lines.p2p_cost - lines.p2p_revenue for lines in computed.lines.values()), Decimal(0))
        load, gen, tariffs = computed.load_wh, computed.gen_wh, computed.tariffs
        grid_in = rules.money(max(0, load - gen) * tariffs.retail / 1000)
        grid_out = rules.money(max(0, gen - load) * tariffs.feed_in / 1000)
        postings = [
            (coop[CoopAccount.P2P_CLEARING], -collected),
            (coop[CoopAccount.GRID_PURCHASES], grid_in),
            (coop[CoopAccount.GRID_SALES], -grid_out),
            # What members paid beyond the grid cost is rounding (prices to 5, amounts to 4 places).
            (coop[CoopAccount.ROUNDING], collected - grid_in + grid_out),
        ]
        description = f"Community grid cost of {format_instant(start)} r{revision}"
    else:
        spread = market_selectors.interval_spread(start=start)
        postings = [(coop[CoopAccount.P2P_CLEARING], -spread), (coop[CoopAccount.MARKET_SPREAD], spread)]
        description = f"Market spread of {format_instant(start)} r{revision} (pay-as-bid)"
    postings = [(account, amount) for account, amount in postings if amount != 0]
    if postings:
        ledger.transaction_post(
            idempotency_key=f"{stem}:r{revision}",
            postings=postings,
            description=description,
            kind="settlement.interval",
            occurred_at=start,
        )


def _book(
    *,
    start: dt.datetime,
    inputs: IntervalInputs,
    computed: IntervalLines,
    members: set[int],
    revisions: dict[int, MemberSettlement],
    now: dt.datetime,
    rule_version: int,
) -> int:
    """Write settlements and their ledger transactions for ``members``.

    ``revisions`` maps members to their standing settlement, which is reversed and
    superseded; members without one get revision 1.
    """
    by_id = Member.objects.in_bulk(list(members))
    accounts = ledger.accounts_for_members(members=list(by_id.values()))
    coop = _coop_accounts()
    entries: list[ledger.TransactionSpec] = []
    rows: list[MemberSettlement] = []
    for member_id in sorted(members):
        member = by_id[member_id]
        member_inputs = inputs.members[member_id]
        lines = computed.lines[member_id]
        previous = revisions.get(member_id)
        revision = previous.revision + 1 if previous else 1
        if previous is not None and previous.ledger_transaction_id:
            ledger.transaction_reverse(
                transaction=ledger_selectors.transaction_get(pk=previous.ledger_transaction_id),
                idempotency_key=f"{_key(start, member, previous.revision)}:reversal",
                description=f"Reversal of the settlement of {format_instant(start)} r{previous.revision}",
                occurred_at=start,
            )
        postings = _postings(lines, accounts[member_id], coop)
        if postings:
            entries.append(
                ledger.TransactionSpec(
                    idempotency_key=_key(start, member, revision),
                    postings=postings,
                    description=f"Settlement of {format_instant(start)} r{revision}",
                    kind=LEDGER_KIND,
                    occurred_at=start,
                )
            )
        rows.append(
            MemberSettlement(
                interval_start=start,
                member=member,
                revision=revision,
                current=True,
                rule_version=rule_version,
                input_hash=computed.hashes[member_id],
                inputs=rules.inputs_json(member_inputs, inputs.tariffs),
                estimated=lines.estimated,
                import_wh=lines.import_wh,
                export_wh=lines.export_wh,
                p2p_bought_wh=lines.p2p_bought_wh,
                p2p_sold_wh=lines.p2p_sold_wh,
                grid_import_wh=lines.grid_import_wh,
                grid_export_wh=lines.grid_export_wh,
                p2p_cost=lines.p2p_cost,
                p2p_revenue=lines.p2p_revenue,
                grid_cost=lines.grid_cost,
                grid_credit=lines.grid_credit,
                fees=lines.fees,
                total=lines.total,
                settled_at=now,
            )
        )
    if revisions:
        MemberSettlement.objects.filter(pk__in=[r.pk for r in revisions.values()]).update(current=False)
    booked = ledger.transactions_post_many(entries=entries) if entries else []
    by_key = {tx.idempotency_key: tx.pk for tx in booked}
    for row in rows:
        row.ledger_transaction_id = by_key.get(_key(start, row.member, row.revision))
    MemberSettlement.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def interval_resettle(*, start: dt.datetime, now: dt.datetime) -> SettleReport:
    """Recompute a settled interval; members whose inputs changed get a correction (reversal
    of the standing transaction and a new revision). Nothing changed: nothing booked."""
    report = SettleReport(interval_start=start)
    with transaction.atomic():
        row = settled_interval_lock(start=start)
        if row is None:
            return report
        inputs = interval_inputs(start=start)
        computed = interval_lines(inputs=inputs, rule_version=row.rule_version)
        standing = {s.member_id: s for s in MemberSettlement.objects.filter(interval_start=start, current=True)}
        changed = {
            member_id
            for member_id, digest in computed.hashes.items()
            if member_id not in standing or standing[member_id].input_hash != digest
        }
        if changed:
            revisions = {m: standing[m] for m in changed if m in standing}
            report.corrected = _book(
                start=start, inputs=inputs, computed=computed, members=changed, revisions=revisions, now=now,
                rule_version=row.rule_version,
            )  # fmt: skip
            if _mode_of(row.rule_version) != "p2p":
                _interval_entries_book(
                    start=start, computed=computed, revision=row.revision + 1, previous_revision=row.revision
                )
            row.revision += 1
        row.estimated = any(i.estimated for i in inputs.members.values())
        row.save(update_fields=["revision", "estimated"])
        report.members = len(inputs.members)
    if report.corrected:
        transaction.on_commit(_seal, robust=True)
    return report


def _seal() -> None:
    ledger.ledger_seal_all()


def _readings_in(start: dt.datetime) -> bool:
    end = start + interval_length()
    expected = meter_selectors.members_with_main_meters(start=start, end=end)
    present = set(meter_selectors.members_interval_energy(start=start, end=end))
    return expected <= present


def intervals_settle_due(*, now: dt.datetime, limit: int = 200) -> list[SettleReport]:
    """Settle, oldest first, every ended interval whose readings are in, or whose cutoff
    (SETTLEMENT_CUTOFF_MINUTES after its end) has passed, estimating what is missing."""
    step = interval_length()
    cutoff = dt.timedelta(minutes=settings.SETTLEMENT_CUTOFF_MINUTES)
    last = SettledInterval.objects.order_by("-interval_start").values_list("interval_start", flat=True).first()
    earliest = now - dt.timedelta(hours=settings.SETTLEMENT_LOOKBACK_HOURS)
    first_meter = meter_selectors.main_meters_first_installed()
    if first_meter is None:
        return []
    earliest = max(earliest, first_meter)
    start = max(last + step, earliest) if last else earliest
    start = floor_to_interval(start)
    reports: list[SettleReport] = []
    while start + step <= now and len(reports) < limit:
        if not (now >= start + step + cutoff or _readings_in(start)):
            break  # later intervals wait for this one: settlement goes in order
        if not SettledInterval.objects.filter(interval_start=start).exists():
            reports.append(interval_settle(start=start, now=now))
        start += step
    return reports


def corrections_run(*, now: dt.datetime) -> list[SettleReport]:
    """Re-settle intervals whose inputs may have changed: those settled on estimates within
    the correction window, and those whose meter data changed since the last run (the
    meters app's correction log, read from a stored cursor). Cheap when nothing changed."""
    window = now - dt.timedelta(days=settings.SETTLEMENT_CORRECTION_DAYS)
    starts = set(
        SettledInterval.objects.filter(estimated=True, interval_start__gte=window).values_list(
            "interval_start", flat=True
        )
    )
    cursor, _ = CorrectionCursor.objects.get_or_create(name="meters")
    changes = list(
        meter_selectors.interval_corrections_since(after_id=cursor.last_id).values_list("pk", "interval_start")
    )
    starts |= {start for _pk, start in changes}
    settled = set(SettledInterval.objects.filter(interval_start__in=starts).values_list("interval_start", flat=True))
    reports = [interval_resettle(start=s, now=now) for s in sorted(starts) if s in settled]
    if changes:
        CorrectionCursor.objects.filter(name="meters", last_id__lt=changes[-1][0]).update(last_id=changes[-1][0])
    return [r for r in reports if r.corrected]
