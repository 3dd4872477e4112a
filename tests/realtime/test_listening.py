"""Which members have a live socket: the channel layer's own group records, in Redis."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.realtime import groups
from apps.realtime.selectors import members_listening


@pytest.mark.websockets
def test_members_listening_reads_the_member_groups():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(groups.member_group(424242), channel)
    try:
        assert members_listening(member_ids=[424242, 434343]) == {424242}
    finally:
        async_to_sync(layer.group_discard)(groups.member_group(424242), channel)
    assert members_listening(member_ids=[424242]) == set()
