-- Removes one binding by registration id. KEYS[1]: the AOR; KEYS[2]: the expiry set.
-- ARGV: aor, registration id. Returns the binding's JSON, or nil when it was gone.
local json = redis.call('HGET', KEYS[1], ARGV[2])
if json then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1] .. '\n' .. ARGV[2])
end
return json
