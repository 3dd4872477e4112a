"""Input and output shapes of the market API (kept apart, CONVENTIONS 10)."""

from rest_framework import serializers

from apps.common.api.fields import UtcDateTimeField


class OrderInputSerializer(serializers.Serializer):
    """Documentation of the body; the service itself checks every field (one set of rules)."""

    interval_start = UtcDateTimeField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity_wh = serializers.IntegerField(min_value=1)
    limit_price = serializers.DecimalField(max_digits=10, decimal_places=5)


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    interval_start = UtcDateTimeField(source="interval.start")
    side = serializers.CharField()
    quantity_wh = serializers.IntegerField()
    limit_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    status = serializers.CharField()
    filled_wh = serializers.IntegerField()
    source = serializers.CharField()
    submitted_at = UtcDateTimeField()


class TradeOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    side = serializers.CharField()
    quantity_wh = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=10, decimal_places=5)
    amount = serializers.DecimalField(max_digits=18, decimal_places=4)
    order_id = serializers.IntegerField()


class IntervalOutputSerializer(serializers.Serializer):
    start = UtcDateTimeField()
    end = UtcDateTimeField()
    gate_closure = UtcDateTimeField()
    state = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=5, allow_null=True)
    volume_wh = serializers.IntegerField(allow_null=True)
    retail_price = serializers.DecimalField(max_digits=10, decimal_places=5, allow_null=True)
    feed_in_price = serializers.DecimalField(max_digits=10, decimal_places=5, allow_null=True)


class ResultOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    price = serializers.DecimalField(max_digits=10, decimal_places=5, allow_null=True)
    volume_wh = serializers.IntegerField()
    trades = serializers.IntegerField()
    bids_wh = serializers.IntegerField()
    offers_wh = serializers.IntegerField()


class DynamicPriceInputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    retail_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    feed_in_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    imbalance_price = serializers.DecimalField(max_digits=10, decimal_places=5, required=False, allow_null=True)
    network_fee = serializers.DecimalField(max_digits=10, decimal_places=5, required=False, allow_null=True)
    coop_fee = serializers.DecimalField(max_digits=10, decimal_places=5, required=False, allow_null=True)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100)


class DynamicPricesInputSerializer(serializers.Serializer):
    prices = DynamicPriceInputSerializer(many=True, allow_empty=False)


class TariffOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    retail_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    feed_in_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    imbalance_price = serializers.DecimalField(max_digits=10, decimal_places=5)
    network_fee = serializers.DecimalField(max_digits=10, decimal_places=5)
    coop_fee = serializers.DecimalField(max_digits=10, decimal_places=5)


class DynamicPricesOutputSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
