from apps.market.models.clearing import ClearingResult, Trade
from apps.market.models.intervals import Interval
from apps.market.models.orders import Order, OrderEvent
from apps.market.models.preferences import TradingPreference
from apps.market.models.tariffs import DynamicPrice, TariffSchedule

__all__ = [
    "ClearingResult",
    "DynamicPrice",
    "Interval",
    "Order",
    "OrderEvent",
    "TariffSchedule",
    "Trade",
    "TradingPreference",
]
