from rest_framework import serializers

from apps.common.api.fields import MoneyField, UtcDateTimeField


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
    p2p_cost = MoneyField()
    p2p_revenue = MoneyField()
    grid_cost = MoneyField()
    grid_credit = MoneyField()
    fees = MoneyField()
    total = MoneyField()
    input_hash = serializers.CharField()


class BalanceOutputSerializer(serializers.Serializer):
    balance = MoneyField()
    currency = serializers.CharField()
