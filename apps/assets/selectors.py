from django.db.models import QuerySet

from apps.assets.models import DerAsset
from apps.members.models import Member


def assets_for_member(*, member: Member) -> QuerySet[DerAsset]:
    return DerAsset.objects.filter(member=member).select_related("meter").order_by("kind", "pk")
