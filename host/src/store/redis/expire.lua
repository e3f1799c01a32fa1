-- Claims the bindings of one bucket due by now: each is removed from the bucket's expiry
-- set and its AOR by the one node whose call gets it, so every expiry is reported once.
-- KEYS[1]: the bucket's expiry set. ARGV: now_ms, the most to claim, the key prefix of
-- the bucket's AORs. Returns {aor, binding json, ...}.
local now = tonumber(ARGV[1])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local at = string.find(member, '\n', 1, true)
  local aor, id = string.sub(member, 1, at - 1), string.sub(member, at + 1)
  local key = ARGV[3] .. aor
  local json = redis.call('HGET', key, id)
  if json and cjson.decode(json).expires_at_ms <= now then
    redis.call('HDEL', key, id)
    if redis.call('HLEN', key) <= 1 then
      redis.call('DEL', key) -- at most the version is left
    else
      redis.call('HINCRBY', key, '_v', 1)
    end
    out[#out + 1] = aor
    out[#out + 1] = json
  end
end
return out
