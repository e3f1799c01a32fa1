-- sip.kv.incr in Redis: KEYS[1] the key; ARGV: by, ttl in ms (0: none). A new key gets the
-- ttl, an existing one keeps its expiry (a fixed window). Returns the new value, or
-- 'notint' when the key holds another type (kept as 'b:', 'n:' or 's:' text).
local v = redis.call('GET', KEYS[1])
if v and string.find(v, ':', 1, true) then return 'notint' end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if not v and ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
