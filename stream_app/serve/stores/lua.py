"""The Redis projection's Lua scripts: each one atomic step of ``projection.py``.

Apart from the Python that calls them so each file reads whole; the keys they
touch are listed in ``projection.py``'s docstring. ``ARGV`` of the update
script: ``RedisProjection._args``.
"""

from __future__ import annotations

APPLY_UPDATE = """
local p, id = ARGV[1], ARGV[2]
local key = p .. 'lead:' .. id
local version = tonumber(ARGV[3])
local old = redis.call('HMGET', key, 'version', 'stage', 'account', 'source', 'campaign', 'cell')
if old[1] and tonumber(old[1]) >= version then return 0 end
local held = {old[4], old[5]}
if old[1] and not old[4] then
  -- written before the hash kept source and campaign: its update has them
  local was = cjson.decode(redis.call('HGET', key, 'json'))
  for i, dim in ipairs({'source', 'campaign'}) do
    held[i] = type(was[dim]) == 'string' and was[dim] or '(none)'
  end
end
local stage, total, account = ARGV[4], tonumber(ARGV[5]), ARGV[6]
redis.call('HSET', key, 'version', version, 'stage', stage, 'total', total,
           'account', account, 'source', ARGV[10], 'campaign', ARGV[11], 'json', ARGV[7],
           'cell', ARGV[15])
if old[6] and old[6] ~= ARGV[15] then redis.call('SREM', p .. 'cell:' .. old[6], id) end
redis.call('SADD', p .. 'cell:' .. ARGV[15], id)
redis.call('ZADD', key .. ':scores', version, ARGV[16])
redis.call('ZREMRANGEBYRANK', key .. ':scores', 0, -tonumber(ARGV[17]) - 1)
if old[2] and old[2] ~= stage then
  redis.call('SREM', p .. 'stage:' .. old[2], id)
  redis.call('ZREM', p .. 'hot:' .. old[2], id)
end
redis.call('SADD', p .. 'leads', id)
redis.call('SADD', p .. 'stage:' .. stage, id)
if stage == 'disqualified' then
  redis.call('ZREM', p .. 'hot', id)
else
  redis.call('ZADD', p .. 'hot', total, id)
  redis.call('ZADD', p .. 'hot:' .. stage, total, id)
end
if old[3] and old[3] ~= '' and old[3] ~= account then
  redis.call('ZREM', p .. 'account:' .. old[3], id)
end
if account ~= '' then
  redis.call('ZADD', p .. 'account:' .. account, total, id)
  redis.call('SADD', p .. 'accounts', account)
  redis.call('SADD', p .. 'accounts:dirty', account)
end
if old[3] and old[3] ~= '' and old[3] ~= account then
  redis.call('SADD', p .. 'accounts:dirty', old[3])
end
local to_mql, mql_to_sql = ARGV[8], ARGV[9]
if to_mql ~= '' then
  redis.call('SADD', p .. 'reached:mql', id)
  redis.call('ZADD', p .. 'velocity:to_mql', tonumber(to_mql), id)
end
if mql_to_sql ~= '' then
  redis.call('SADD', p .. 'reached:sql', id)
  redis.call('ZADD', p .. 'velocity:mql_to_sql', tonumber(mql_to_sql), id)
end
for i, dim in ipairs({'source', 'campaign'}) do
  local value, was = ARGV[9 + i], held[i]
  if was and was ~= value then
    -- attribution moved (an earlier first touch): the lead, and what it reached, moves too
    for _, part in ipairs({'leads', 'mql', 'sql'}) do
      redis.call('SMOVE', p .. dim .. ':' .. was .. ':' .. part,
                 p .. dim .. ':' .. value .. ':' .. part, id)
    end
    if redis.call('SCARD', p .. dim .. ':' .. was .. ':leads') == 0 then
      redis.call('SREM', p .. dim .. 's', was)
    end
  end
  redis.call('SADD', p .. dim .. 's', value)
  redis.call('SADD', p .. dim .. ':' .. value .. ':leads', id)
  if to_mql ~= '' then redis.call('SADD', p .. dim .. ':' .. value .. ':mql', id) end
  if mql_to_sql ~= '' then redis.call('SADD', p .. dim .. ':' .. value .. ':sql', id) end
end
local sla = ARGV[12]
redis.call('SREM', p .. 'sla:open', id)
redis.call('SREM', p .. 'sla:breached', id)
redis.call('ZREM', p .. 'sla_due:open', id)
redis.call('ZREM', p .. 'sla_due:breached', id)
if sla ~= '' then
  redis.call('SADD', p .. 'sla:' .. sla, id)
  redis.call('ZADD', p .. 'sla_due:' .. sla, tonumber(ARGV[18]), id)
end
if ARGV[13] ~= '' then redis.call('ZADD', p .. 'mql_at', tonumber(ARGV[13]), id) end
if ARGV[14] ~= '' then redis.call('ZADD', p .. 'sql_at', tonumber(ARGV[14]), id) end
return 1
"""


# ARGV: prefix, lead id, then every stage name
ERASE_LEAD = """
local p, id = ARGV[1], ARGV[2]
local key = p .. 'lead:' .. id
local held = redis.call('HMGET', key, 'account', 'cell')
local account = held[1]
if held[2] then redis.call('SREM', p .. 'cell:' .. held[2], id) end
local existed = redis.call('DEL', key, key .. ':transitions', key .. ':scores')
for _, entry in ipairs(redis.call('XRANGE', p .. 'feed', '-', '+')) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'lead' and fields[i + 1] == id then
      redis.call('XDEL', p .. 'feed', entry[1])
    end
  end
end
for _, member in ipairs(redis.call('ZRANGE', p .. 'breaches', 0, -1)) do
  if cjson.decode(member)['lead_id'] == id then redis.call('ZREM', p .. 'breaches', member) end
end
redis.call('SREM', p .. 'leads', id)
for _, outcome in ipairs({'accepted', 'rejected', 'opportunity', 'won', 'lost'}) do
  for band = 0, 10 do redis.call('ZREM', p .. 'outcomes:' .. outcome .. ':' .. band, id) end
end
for i = 3, #ARGV do
  redis.call('SREM', p .. 'stage:' .. ARGV[i], id)
  redis.call('ZREM', p .. 'hot:' .. ARGV[i], id)
end
for _, name in ipairs({'hot', 'velocity:to_mql', 'velocity:mql_to_sql', 'mql_at', 'sql_at',
                       'sla_due:open', 'sla_due:breached'}) do
  redis.call('ZREM', p .. name, id)
end
for _, name in ipairs({'reached:mql', 'reached:sql', 'sla:open', 'sla:breached'}) do
  redis.call('SREM', p .. name, id)
end
if account and account ~= '' then
  local zset = p .. 'account:' .. account
  redis.call('ZREM', zset, id)
  redis.call('SADD', p .. 'accounts:dirty', account)
  if redis.call('ZCARD', zset) == 0 then
    redis.call('SREM', p .. 'accounts', account)
    redis.call('ZREM', p .. 'account_scores', account)
  end
end
for _, dim in ipairs({'source', 'campaign'}) do
  for _, value in ipairs(redis.call('SMEMBERS', p .. dim .. 's')) do
    local base = p .. dim .. ':' .. value .. ':'
    redis.call('SREM', base .. 'leads', id)
    redis.call('SREM', base .. 'mql', id)
    redis.call('SREM', base .. 'sql', id)
    if redis.call('SCARD', base .. 'leads') == 0 then
      redis.call('SREM', p .. dim .. 's', value)
    end
  end
end
return existed
"""


# One membership of a value's sets checked against the lead's hash, atomically
# (a projector writing meanwhile moves the lead itself): kept if the hash holds
# that value, removed from the value's leads, mql and sql sets if it holds
# another. A lead without a hash is left alone (attribution cannot say).
REPAIR_MEMBER = """
local p, dim, value, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = p .. 'lead:' .. id
local held = redis.call('HMGET', key, dim, 'json')
local current = held[1]
if not current then
  if not held[2] then return 0 end
  local was = cjson.decode(held[2])[dim]
  current = type(was) == 'string' and was or '(none)'
end
if current == value then return 0 end
local removed = 0
for _, part in ipairs({'leads', 'mql', 'sql'}) do
  removed = removed + redis.call('SREM', p .. dim .. ':' .. value .. ':' .. part, id)
end
return removed
"""

# ARGV: prefix, top_n, how many. Scores that many dirty accounts (all of them first, or
# when top_n changed) as ``account`` computes it: scoring.accounts.top_n_sum over its
# leads that have a hash and are not disqualified, summed in the same order (highest
# first), so the same double. Stored negated: ZRANGE then ranks as the API always
# did (highest score first, ties by account id). Returns how many are still dirty.
REFRESH_ACCOUNT_SCORES = """
local p, top_n, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local scores = p .. 'account_scores'
if redis.call('GET', scores .. ':top_n') ~= top_n then
  redis.call('DEL', scores)
  redis.call('SUNIONSTORE', p .. 'accounts:dirty', p .. 'accounts:dirty', p .. 'accounts')
  redis.call('SET', scores .. ':top_n', top_n)
end
local n_max = tonumber(top_n)
for _, name in ipairs(redis.call('SPOP', p .. 'accounts:dirty', batch)) do
  local members = redis.call('ZREVRANGE', p .. 'account:' .. name, 0, -1, 'WITHSCORES')
  if #members == 0 then
    redis.call('ZREM', scores, name)
  else
    local sum, n = 0, 0
    for j = 1, #members, 2 do
      if n >= n_max then break end
      local total = tonumber(members[j + 1])
      if total <= 0 then break end
      local stage = redis.call('HGET', p .. 'lead:' .. members[j], 'stage')
      if stage and stage ~= 'disqualified' then sum, n = sum + total, n + 1 end
    end
    redis.call('ZADD', scores, 0 - sum, name)
  end
end
return redis.call('SCARD', p .. 'accounts:dirty')
"""

# A value nobody is attributed to any more leaves the list of values.
DROP_EMPTY_VALUE = """
local p, dim, value = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SCARD', p .. dim .. ':' .. value .. ':leads') > 0 then return 0 end
return redis.call('SREM', p .. dim .. 's', value)
"""

#: A sales outcome counted under the band of the lead's last hand-off to sales (drift):
#: ARGV p, lead id, outcome, event time, the window's seconds. Entries older than the
#: window before this one leave (the count is of the last window of feedback).
RECORD_OUTCOME = """
local p, id, outcome, t = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local band = redis.call('HGET', p .. 'lead:' .. id, 'handoff_band')
if not band then return 0 end
local key = p .. 'outcomes:' .. outcome .. ':' .. band
redis.call('ZADD', key, t, id)
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (t - tonumber(ARGV[5])))
redis.call('SADD', p .. 'outcomes', key)
local newest = tonumber(redis.call('GET', p .. 'outcomes:newest') or '0')
if t > newest then redis.call('SET', p .. 'outcomes:newest', ARGV[4]) end
return 1
"""
