-- Moves one AOR of the layout before buckets (`<prefix>:aor:<aor>`, one `<prefix>:due` for
-- every binding) into its bucket's keys, atomically. A binding the new hash already has is
-- kept as it is (a node of this version wrote it since).
-- KEYS[1]: the old AOR hash; KEYS[2]: the new one; KEYS[3]: the bucket's expiry set;
-- KEYS[4]: the old expiry set. ARGV: aor, grace_ms. Returns how many bindings moved.
local aor, grace = ARGV[1], tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
local moved = 0
for i = 1, #fields, 2 do
  local id, json = fields[i], fields[i + 1]
  if id ~= '_v' then
    redis.call('ZREM', KEYS[4], aor .. '\n' .. id)
    if redis.call('HSETNX', KEYS[2], id, json) == 1 then
      redis.call('ZADD', KEYS[3], cjson.decode(json).expires_at_ms, aor .. '\n' .. id)
      moved = moved + 1
    end
  end
end
redis.call('DEL', KEYS[1])
if moved > 0 then
  redis.call('HINCRBY', KEYS[2], '_v', 1)
  local latest = 0
  local now = redis.call('HGETALL', KEYS[2])
  for i = 1, #now, 2 do
    if now[i] ~= '_v' then
      local at = cjson.decode(now[i + 1]).expires_at_ms
      if at > latest then latest = at end
    end
  end
  redis.call('PEXPIREAT', KEYS[2], latest + grace)
end
return moved
