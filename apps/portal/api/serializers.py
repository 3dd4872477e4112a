from rest_framework import serializers


class MeterRefSerializer(serializers.Serializer):
    serial = serializers.CharField()
    role = serializers.CharField()


class MeOutputSerializer(serializers.Serializer):
    member_number = serializers.CharField()
    status = serializers.CharField()
    role = serializers.CharField()
    email = serializers.EmailField()
    meters = MeterRefSerializer(many=True)
