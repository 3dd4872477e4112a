from rest_framework import serializers

from apps.common.api.fields import UtcDateTimeField

MONEY = {"max_digits": 18, "decimal_places": 4}


class SettlementOutputSerializer(serializers.Serializer):
    interval_start = UtcDateTimeField()
    revision = serializers.IntegerField()
    rule_version = serializers.IntegerField()
    estimated = serializers.BooleanField()
    import_wh = serializers.IntegerField()
    export_wh = serializers.IntegerField()
    p2p_bought_wh = serializers.IntegerField()
    p2p_sold_wh = serializers.IntegerField()
    grid_import_wh = serializers.IntegerField()
    grid_export_wh = serializers.IntegerField()
    p2p_cost = serializers.DecimalField(**MONEY)
    p2p_revenue = serializers.DecimalField(**MONEY)
    grid_cost = serializers.DecimalField(**MONEY)
    grid_credit = serializers.DecimalField(**MONEY)
    fees = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    input_hash = serializers.CharField()


class BalanceOutputSerializer(serializers.Serializer):
    balance = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
