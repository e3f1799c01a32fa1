-- Removes one binding by registration id. KEYS[1]: the AOR; KEYS[2]: its bucket's expiry
-- set. ARGV: aor, registration id. Returns the binding's JSON, or nil when it was gone.
local json = redis.call('HGET', KEYS[1], ARGV[2])
if json then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1] .. '\n' .. ARGV[2])
  if redis.call('HLEN', KEYS[1]) <= 1 then
    redis.call('DEL', KEYS[1]) -- at most the version is left
  else
    redis.call('HINCRBY', KEYS[1], '_v', 1)
  end
end
return json
