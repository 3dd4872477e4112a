"""The one live endpoint, ``/ws/live/``."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.realtime import groups

# Close code for a refused connection (policy violation range of RFC 6455 private codes).
CLOSE_UNAUTHENTICATED = 4401


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Signed-in members get the market and their own private events; anonymous is refused."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        member_id = await self._member_id(user)
        if member_id is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.joined = [groups.MARKET, groups.member_group(member_id)]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def live_event(self, event: dict[str, Any]) -> None:
        """Every broadcast arrives as ``{"type": "live.event", "payload": {...}}``."""
        await self.send_json(event["payload"])

    @database_sync_to_async
    def _member_id(self, user: Any) -> int | None:
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        from apps.members.models import Member

        return Member.objects.filter(user=user).values_list("pk", flat=True).first()
