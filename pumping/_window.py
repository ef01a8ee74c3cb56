"""Sliding-window counters in Redis, checked and counted in one atomic script.

Each counter is one Redis hash per subject (``<ns>:pumping:v:<scope>:<subject>``) whose fields are bucket
indexes (``floor(t / step)``, ``step = window / BUCKETS``) and values the messages counted in that bucket: the
sum of the last ``BUCKETS`` buckets is the window's count (a sliding window, ``step`` coarse; the conversion
counters use ``CONVERSION_BUCKETS``). Stale fields are
dropped as they are read and every key expires a bucket after its window, so the counters are short-lived
and a Redis that lost them only forgets recent velocity: allow-lists and blocks are in SQL.

One script call per check does, atomically: count every scope, judge the prefix's conversion, refuse at the
first scope over its limit (incrementing that scope's strike counter) or count the message in every scope.
Concurrent checks cannot both take the last slot of a window.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

BUCKETS = 10
"""Buckets per velocity window: the window slides in steps of a tenth of its length."""

CONVERSION_BUCKETS = 60
"""Buckets per conversion window (a minute each for the default hour): fine enough to see a burst."""

RECENT_BUCKETS = 5
"""The conversion's burst view: the last five of those buckets (five minutes by default)."""

# KEYS: [velocity hashes (n)..., sent hash, verified hash, trickle key, good-number key, strike keys (n + 1)...]
# ARGV: now, n, judge conversion (0/1), min unverified, threshold, conversion step, throttle seconds,
#       strike ttl, prefix scope index (1-based, 0: none), then per velocity scope: step, limit
# Returns {status, scope index, retry after, strikes, sent, verified}; status 0 = counted, 1 = over a velocity
# limit (scope index), 2 = low conversion; a trickle message through a throttled prefix returns status 3.
SCRIPT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local nb = BUCKETS

local function live(key, step, nb)
  local cur = math.floor(now / step)
  local h = redis.call('HGETALL', key)
  local total, stale, buckets = 0, {}, {}
  for i = 1, #h, 2 do
    local b = tonumber(h[i])
    if b <= cur - nb then
      stale[#stale + 1] = h[i]
    else
      local c = tonumber(h[i + 1])
      total = total + c
      buckets[#buckets + 1] = {b, c}
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return total, buckets, cur
end

local function refuse(idx, retry)
  local skey = KEYS[n + 4 + idx]
  local strikes = redis.call('INCR', skey)
  redis.call('EXPIRE', skey, tonumber(ARGV[8]))
  return {idx <= n and 1 or 2, idx, retry, strikes}
end

-- Low conversion over the whole window is a one-sided binomial test at the threshold p: P(X <= verified | sent, p),
-- summed in log space, at most the chance (1 - p)^(2 min) that twice `min` codes all go unverified in a prefix
-- converting at p. So 2 x `min` unverified with none verified trip it, while a converting prefix's bad luck (3 of
-- 12, or 9 of 9 unverified at 50 %) does not; a fast attack is caught sooner by the burst view below.
local function significantly_low(sent, verified)
  local p, min = tonumber(ARGV[5]), tonumber(ARGV[4])
  if verified >= p * sent then return false end
  if p <= 0 then return false end
  if p >= 1 then return true end
  local alpha = 2 * min * math.log(1 - p)
  local lt = sent * math.log(1 - p)
  local acc = math.exp(lt - alpha)
  local odds = math.log(p / (1 - p))
  for k = 0, verified - 1 do
    lt = lt + math.log((sent - k) / (k + 1)) + odds
    acc = acc + math.exp(lt - alpha)
    if acc > 1 then return false end
  end
  return acc <= 1 + 1e-9
end

local good = redis.call('EXISTS', KEYS[n + 4]) == 1
local prefix_idx = tonumber(ARGV[9])
local sent, verified = 0, 0
local trickle = false
local steps = {}
for i = 1, n do steps[i] = tonumber(ARGV[9 + 2 * i - 1]) end

for i = 1, n do
  if not (good and i == prefix_idx) then
    local limit = tonumber(ARGV[9 + 2 * i])
    local total, buckets, cur = live(KEYS[i], steps[i], nb)
    if total >= limit then
      table.sort(buckets, function(a, b) return a[1] < b[1] end)
      local excess, cum, retry = total - limit + 1, 0, steps[i] * nb
      for _, bc in ipairs(buckets) do
        cum = cum + bc[2]
        if cum >= excess then retry = (bc[1] + nb) * steps[i] - now break end
      end
      local r = refuse(i, math.max(1, math.ceil(retry)))
      return r
    end
  end
  -- the prefix's conversion is judged right after the number (scope 1): before the other velocities
  if i == 1 and ARGV[3] == '1' and not good then
    local cstep, min, p = tonumber(ARGV[6]), tonumber(ARGV[4]), tonumber(ARGV[5])
    local sb, vb, cur
    sent, sb, cur = live(KEYS[n + 1], cstep, CONVERSION_BUCKETS)
    verified, vb = live(KEYS[n + 2], cstep, CONVERSION_BUCKETS)
    local rs, rv = 0, 0
    for _, bc in ipairs(sb) do if bc[1] > cur - RECENT_BUCKETS then rs = rs + bc[2] end end
    for _, bc in ipairs(vb) do if bc[1] > cur - RECENT_BUCKETS then rv = rv + bc[2] end end
    -- low over the window with confidence, or a burst: `min` unverified codes within the last few minutes
    -- (a slow prefix never sees that many so fast by chance; a pumped one does within seconds)
    local burst = rs - rv >= min and rv < p * rs
    if sent - verified >= min and (burst or significantly_low(sent, verified)) then
      if redis.call('SET', KEYS[n + 3], '1', 'NX', 'EX', tonumber(ARGV[7])) then
        trickle = true
      else
        local r = refuse(n + 1, math.max(1, redis.call('TTL', KEYS[n + 3])))
        r[5], r[6] = sent, verified
        return r
      end
    end
  end
end

for i = 1, n do
  local cur = math.floor(now / steps[i])
  redis.call('HINCRBY', KEYS[i], cur, 1)
  redis.call('PEXPIRE', KEYS[i], math.ceil((nb + 1) * steps[i] * 1000))
end
return {trickle and 3 or 0, 0, 0, 0, sent, verified}
""".replace("CONVERSION_BUCKETS", str(CONVERSION_BUCKETS)).replace(
    "RECENT_BUCKETS", str(RECENT_BUCKETS)).replace("BUCKETS", str(BUCKETS))

# KEYS: [hash, once key]; ARGV: now, step, amount, once ttl, buckets. With a once key, counts only if that key holds
# no time within the window (one count per number and window: a bombed number is not many numbers). The key
# holds the time counted, not just its TTL, so a clock that is not Redis's (a simulation) is judged right too.
BUMP = """
if KEYS[2] then
  local last = redis.call('GET', KEYS[2])
  if last and tonumber(last) and tonumber(last) > tonumber(ARGV[1]) - tonumber(ARGV[4]) then return 0 end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[4]))
end
local step = tonumber(ARGV[2])
local cur = math.floor(tonumber(ARGV[1]) / step)
redis.call('HINCRBY', KEYS[1], cur, tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[5]) + 1) * step * 1000))
return 1
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """One velocity limit to check: its Redis hash, its window and its limit."""

    name: str  # number | prefix | tenant | ip
    key: str
    strike_key: str
    window: int
    limit: int

    @property
    def step(self) -> float:
        return self.window / BUCKETS


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What the script answered."""

    status: int  # 0 counted, 1 over a velocity limit, 2 low conversion, 3 counted as a throttled prefix's trickle
    scope: Scope | None
    retry_after: int
    strikes: int
    sent: int
    verified: int


class Windows:
    """The atomic check-and-count of one message against its scopes (and its prefix's conversion)."""

    def __init__(self, redis: Any) -> None:
        self._check = redis.register_script(SCRIPT)
        self._bump = redis.register_script(BUMP)

    def check(
        self, scopes: list[Scope], *, now: float, conversion: tuple[str, str, str, str, str] | None,
        min_unverified: int, threshold: float, conversion_window: int, throttle_seconds: int, strike_ttl: int,
    ) -> Outcome:
        """``conversion``: (sent hash, verified hash, trickle key, good-number key, strike key) of the prefix,
        or None not to judge conversion (not a verification, or no prefix)."""
        sent_key, ok_key, trickle_key, good_key, conv_strike = conversion or ("_", "_", "_", "_", "_")
        keys = [s.key for s in scopes] + [sent_key, ok_key, trickle_key, good_key]
        keys += [s.strike_key for s in scopes] + [conv_strike]
        prefix_idx = next((i + 1 for i, s in enumerate(scopes) if s.name == "prefix"), 0)
        args: list[Any] = [repr(now), len(scopes), 1 if conversion else 0, min_unverified, repr(threshold),
                           repr(conversion_window / CONVERSION_BUCKETS), throttle_seconds, strike_ttl, prefix_idx]
        for s in scopes:
            args += [repr(s.step), s.limit]
        if not scopes:
            # the script judges conversion inside the scope loop: give it one scope that never refuses
            raise ValueError("at least one scope")
        status, idx, retry, strikes, *rest = self._check(keys=keys, args=args)
        sent, verified = (int(rest[0]), int(rest[1])) if len(rest) >= 2 else (0, 0)
        scope = scopes[int(idx) - 1] if status == 1 else None
        return Outcome(int(status), scope, int(retry), int(strikes), sent, verified)

    def bump(self, key: str, *, now: float, window: int, amount: int = 1, once: str | None = None,
             buckets: int = CONVERSION_BUCKETS) -> bool:
        """Count ``amount`` in the current bucket; with ``once``, only if that key was not set within the window."""
        keys = [key] if once is None else [key, once]
        return bool(self._bump(keys=keys, args=[repr(now), repr(window / buckets), amount, window, buckets]))

    @staticmethod
    def total(redis: Any, key: str, *, now: float, window: int, buckets: int = CONVERSION_BUCKETS) -> int:
        """The window's count of a hash (read only)."""
        step = window / buckets
        cur = math.floor(now / step)
        return sum(int(v) for b, v in redis.hgetall(key).items() if int(b) > cur - buckets)
