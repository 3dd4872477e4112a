"""Shapes of the readings endpoints, for the OpenAPI schema (the bodies are parsed by the service,
which answers malformed items one by one instead of refusing the request)."""

from rest_framework import serializers


class ReadingInputSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(help_text="Interval boundary, ISO 8601 UTC.")
    import_wh = serializers.IntegerField(min_value=0, help_text="OBIS 1.8.0, cumulative Wh.")
    export_wh = serializers.IntegerField(min_value=0, help_text="OBIS 2.8.0, cumulative Wh.")


class BulkReadingInputSerializer(ReadingInputSerializer):
    serial = serializers.CharField()


class ReadingsInputSerializer(serializers.Serializer):
    readings = ReadingInputSerializer(many=True, max_length=10_000)


class BulkReadingsInputSerializer(serializers.Serializer):
    readings = BulkReadingInputSerializer(many=True, max_length=10_000)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()


class IngestOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectionSerializer(many=True)
