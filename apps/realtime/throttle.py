"""Coalescing of fast-changing state across processes: at most one send per window per key,
and the newest state is always sent in the end.

Every process that offers a state writes it as the key's newest; the first offer of a quiet
key takes a lease and sends at once (the leading edge); offers inside the window only
replace the newest. When the window ends, the lease holder sends the newest state if anything
was offered since its last send and keeps the lease for another window; otherwise it lets
the lease go. The check and the release are one atomic step, so an offer racing with the
release either sees the lease gone (and leads) or is seen by the holder: no state is lost.

The state lives in Redis through the default cache when that is Redis (production, tests,
and ``make run``'s embedded server); a process-local store stands in otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

# The lease outlives the window generously: a holder whose timer fires late keeps it, and a
# holder that died frees the key after this long.
LEASE_WINDOWS = 4
# Keys vanish this long after their last offer.
STATE_TTL_MS = 60_000

_OFFER = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
local seq = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {1, seq}
end
return {0, seq}
"""

_WINDOW_END = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return false
end
local seq = redis.call('GET', KEYS[2])
if (not seq) or seq == ARGV[1] then
  redis.call('DEL', KEYS[3])
  return false
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {seq, redis.call('GET', KEYS[1])}
"""


@dataclass
class _LocalState:
    newest: str
    seq: int
    holder: str | None = None
    lease_until: float = 0.0


class _RedisStore:
    def __init__(self, client: Any, make_key: Callable[[str], str]) -> None:
        self.client = client
        self.make_key = make_key
        self._offer = client.register_script(_OFFER)
        self._window_end = client.register_script(_WINDOW_END)

    def _keys(self, key: str) -> list[str]:
        return [self.make_key(f"{key}:newest"), self.make_key(f"{key}:seq"), self.make_key(f"{key}:lease")]

    def offer(self, key: str, state: str, token: str, lease_ms: int) -> tuple[bool, int]:
        leads, seq = self._offer(keys=self._keys(key), args=[state, token, lease_ms, STATE_TTL_MS])
        return bool(leads), int(seq)

    def window_end(self, key: str, token: str, sent_seq: int, lease_ms: int) -> tuple[int, str] | None:
        found = self._window_end(keys=self._keys(key), args=[str(sent_seq), token, lease_ms])
        if not found:
            return None
        seq, newest = found
        return int(seq), newest.decode() if isinstance(newest, bytes) else newest


class _LocalStore:
    """The same protocol for one process, when the cache is not Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _LocalState] = {}

    def offer(self, key: str, state: str, token: str, lease_ms: int) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            current = self._states.get(key)
            if current is None:
                current = self._states[key] = _LocalState(newest=state, seq=0)
            current.newest, current.seq = state, current.seq + 1
            if current.holder is None or current.lease_until < now:
                current.holder, current.lease_until = token, now + lease_ms / 1000
                return True, current.seq
            return False, current.seq

    def window_end(self, key: str, token: str, sent_seq: int, lease_ms: int) -> tuple[int, str] | None:
        with self._lock:
            current = self._states.get(key)
            if current is None or current.holder != token:
                return None
            if current.seq == sent_seq:
                del self._states[key]
                return None
            current.lease_until = time.monotonic() + lease_ms / 1000
            return current.seq, current.newest


class Coalescer:
    """Sends ``state`` through ``send(key, state)`` at most once per ``window_s`` per key, and
    always sends the newest state offered in the end."""

    def __init__(self, *, name: str, window_s: float, send: Callable[[str, str], None]) -> None:
        self.name = name
        self.window_s = window_s
        self.send = send
        self._backend: _RedisStore | _LocalStore | None = None
        self._backend_lock = threading.Lock()

    def _store(self) -> _RedisStore | _LocalStore:
        with self._backend_lock:
            if self._backend is None:
                backend = caches["default"]
                if isinstance(backend, RedisCache):
                    # Django's cache API counts timeouts in whole seconds and the window needs
                    # milliseconds, so the throttle speaks to the cache's own Redis (one
                    # thread-safe client for the process; its keys carry the cache's prefix).
                    client = backend._cache.get_client(write=True)
                    self._backend = _RedisStore(client, lambda key: backend.make_key(f"{self.name}:{key}"))
                else:
                    self._backend = _LocalStore()
            return self._backend

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.window_s * 1000 * LEASE_WINDOWS))

    def offer(self, key: str, state: str) -> None:
        """Record ``state`` as the newest for ``key``; send it now if the key is quiet."""
        token = uuid.uuid4().hex
        leads, seq = self._store().offer(key, state, token, self._lease_ms)
        if leads:
            # Send before arming the window's end: a trailing send must never overtake the
            # leading one, or the newest state would not be the last one sockets see.
            try:
                self.send(key, state)
            finally:
                self._arm(key, token, seq)

    def _arm(self, key: str, token: str, sent_seq: int) -> None:
        # Not a daemon: a short-lived process (a management command) waits one window at
        # exit rather than lose the newest state.
        timer = threading.Timer(self.window_s, self._window_end, args=(key, token, sent_seq))
        timer.name = f"{self.name}-{key}"
        timer.start()

    def _window_end(self, key: str, token: str, sent_seq: int) -> None:
        try:
            found = self._store().window_end(key, token, sent_seq, self._lease_ms)
            if found is not None:
                seq, newest = found
                try:
                    self.send(key, newest)
                finally:
                    self._arm(key, token, seq)
        except Exception:
            # A timer thread has no caller to tell; the next offer after the lease runs out
            # leads again.
            logger.exception("%s: the trailing send for %s failed", self.name, key)
