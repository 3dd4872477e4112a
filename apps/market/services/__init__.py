"""Writes of the market: intervals, tariffs, orders, clearing and automated trading.

Every adapter (API, pages, admin, tasks, commands) and every other app calls these names
from here; the modules behind them are ``intervals`` (get-or-create, tariffs, dynamic
prices, state moves), ``orders`` (parsing, submit, amend, cancel, capacity), ``clearing``
(the persisted clearing and its publication) and ``autotrade`` (orders placed from
forecasts, and the members' preferences for it). Row locks are taken through
``apps.market.locks`` in the order written there: member, then interval, then orders.
"""

from apps.market.services.autotrade import AutoTradeReport, auto_orders_run, trading_preference_set
from apps.market.services.clearing import interval_clear, intervals_clear_due, mechanism_label
from apps.market.services.intervals import (
    dynamic_prices_set,
    interval_get_or_create,
    interval_mark_settled,
    interval_tariffs_refresh,
)
from apps.market.services.orders import (
    OrderInput,
    member_capacity_wh,
    members_capacity_wh,
    order_amend,
    order_cancel,
    order_input_parse,
    order_submit,
    order_withdraw,
)

__all__ = [
    "AutoTradeReport",
    "OrderInput",
    "auto_orders_run",
    "dynamic_prices_set",
    "interval_clear",
    "interval_get_or_create",
    "interval_mark_settled",
    "interval_tariffs_refresh",
    "intervals_clear_due",
    "mechanism_label",
    "member_capacity_wh",
    "members_capacity_wh",
    "order_amend",
    "order_cancel",
    "order_input_parse",
    "order_submit",
    "order_withdraw",
    "trading_preference_set",
]
