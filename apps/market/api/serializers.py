"""Input and output shapes of the market API (kept apart, CONVENTIONS 10)."""

from rest_framework import serializers

from apps.common.api.fields import MoneyField, PriceField, UtcDateTimeField


class OrderInputSerializer(serializers.Serializer):
    """Documentation of the body; the service itself checks every field (one set of rules)."""

    interval_start = UtcDateTimeField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity_wh = serializers.IntegerField(min_value=1)
    limit_price = PriceField()


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    interval_start = UtcDateTimeField(source="interval.start")
    side = serializers.CharField()
    quantity_wh = serializers.IntegerField()
    limit_price = PriceField()
    status = serializers.CharField()
    filled_wh = serializers.IntegerField()
    source = serializers.CharField()
    submitted_at = UtcDateTimeField()


class TradeOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    side = serializers.CharField()
    quantity_wh = serializers.IntegerField()
    price = PriceField()
    amount = MoneyField()
    order_id = serializers.IntegerField()


class IntervalOutputSerializer(serializers.Serializer):
    start = UtcDateTimeField()
    end = UtcDateTimeField()
    gate_closure = UtcDateTimeField()
    state = serializers.CharField()
    price = PriceField(allow_null=True)
    volume_wh = serializers.IntegerField(allow_null=True)
    retail_price = PriceField(allow_null=True)
    feed_in_price = PriceField(allow_null=True)


class ResultOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    price = PriceField(allow_null=True)
    volume_wh = serializers.IntegerField()
    trades = serializers.IntegerField()
    bids_wh = serializers.IntegerField()
    offers_wh = serializers.IntegerField()


class DynamicPriceInputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    retail_price = PriceField()
    feed_in_price = PriceField()
    imbalance_price = PriceField(required=False, allow_null=True)
    network_fee = PriceField(required=False, allow_null=True)
    coop_fee = PriceField(required=False, allow_null=True)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100)


class DynamicPricesInputSerializer(serializers.Serializer):
    prices = DynamicPriceInputSerializer(many=True, allow_empty=False)


class TariffOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    retail_price = PriceField()
    feed_in_price = PriceField()
    imbalance_price = PriceField()
    network_fee = PriceField()
    coop_fee = PriceField()


class DynamicPricesOutputSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
