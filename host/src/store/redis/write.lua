-- Writes back what a node computed for one AOR (store/rules.rs), if nobody wrote the AOR
-- since the node read it: a compare-and-swap on the AOR's version field, so that nodes
-- sharing the server cannot interleave, without WATCH/MULTI and its extra round trip.
-- KEYS[1]: the AOR hash (field: registration id, value: binding JSON; field `_v`: the
-- version); KEYS[2]: the expiry set of the AOR's bucket (member: AOR, newline,
-- registration id). Both carry the bucket's hash tag: one cluster slot.
-- ARGV: the version read ('' for an AOR that did not exist), aor, grace_ms, the latest
-- expiry of the AOR's bindings now (0: none left), how many written, then per written
-- binding its registration id, expiry and JSON, then the registration ids dropped.
-- Returns 'ok', or 'conflict' (the node reads and computes again).
local version = redis.call('HGET', KEYS[1], '_v')
if (version or '') ~= ARGV[1] then return 'conflict' end
local aor, grace, latest = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local written = tonumber(ARGV[5])
local i = 6
for _ = 1, written do
  local id, expires_at, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('HSET', KEYS[1], id, json)
  redis.call('ZADD', KEYS[2], expires_at, aor .. '\n' .. id)
  i = i + 3
end
for j = i, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[j])
  redis.call('ZREM', KEYS[2], aor .. '\n' .. ARGV[j])
end
if latest == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], '_v', tostring((tonumber(version) or 0) + 1))
  -- Redis's own expiry drops the AOR when its last binding is past due (plus the time
  -- the nodes have to report it).
  redis.call('PEXPIREAT', KEYS[1], latest + grace)
end
return 'ok'
