-- One REGISTER applied to one AOR, atomically (RFC 3261 section 10.3 steps 7 and 8): the
-- rules of store/location.rs, run by the Redis server so that nodes sharing it cannot
-- interleave. Bindings are JSON in the hash KEYS[1] (field: registration id); KEYS[2] is
-- the sorted set of expiry times (member: AOR, newline, registration id).
--
-- ARGV: now_ms, max_contacts, remove_all (1/0), call_id, cseq, branch, source, transport,
-- path ('' for none), grace_ms, aor, then 8 per contact: contact, key, expires, q ('' for
-- none), instance (''), reg_id (''), natted (1/0), registration id.
-- Returns {'too_many'} | {'out_of_order'} | {'ok', {binding json...}, {kind, json, ...}}.
local now = tonumber(ARGV[1])
local max_contacts = tonumber(ARGV[2])
local remove_all = ARGV[3] == '1'
local call_id, cseq, branch = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local source, transport = ARGV[7], ARGV[8]
local null = cjson.null
local function opt(v)
  if v == '' then return null end
  return v
end
local path = opt(ARGV[9])
local grace = tonumber(ARGV[10])
local aor = ARGV[11]

local changes = {}
for i = 12, #ARGV, 8 do
  changes[#changes + 1] = {
    contact = ARGV[i], key = ARGV[i + 1], expires = tonumber(ARGV[i + 2]),
    q = ARGV[i + 3] ~= '' and tonumber(ARGV[i + 3]) or null,
    instance = opt(ARGV[i + 4]), reg_id = opt(ARGV[i + 5]),
    natted = ARGV[i + 6] == '1', id = ARGV[i + 7],
  }
end
local adding = 0
for _, c in ipairs(changes) do
  if c.expires > 0 then adding = adding + 1 end
end
if adding > max_contacts then return { 'too_many' } end

-- The live bindings, least recently written first.
local live = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 2, #raw, 2 do
  local b = cjson.decode(raw[i])
  if b.expires_at_ms > now then live[#live + 1] = b end
end
table.sort(live, function(x, y)
  if x.refreshed_ms ~= y.refreshed_ms then return x.refreshed_ms < y.refreshed_ms end
  return x.registration_id < y.registration_id
end)

-- The binding a contact writes: same +sip.instance and reg-id (RFC 5626), else same URI.
local function writes(c, b)
  if c.instance ~= null and c.reg_id ~= null then
    return b.instance == c.instance and b.reg_id == c.reg_id
  end
  return b.key == c.key
end
local function find(c)
  for i, b in ipairs(live) do
    if writes(c, b) then return i end
  end
  return nil
end

-- Step 7 first, so that a refusal changes nothing.
local retransmission = false
local function ordered(b)
  if b.call_id ~= call_id or cseq > b.cseq then return true end
  if cseq == b.cseq and branch == b.branch then
    retransmission = true
    return true
  end
  return false
end
if remove_all then
  for _, b in ipairs(live) do
    if not ordered(b) then return { 'out_of_order' } end
  end
else
  for _, c in ipairs(changes) do
    local i = find(c)
    if i and not ordered(live[i]) then return { 'out_of_order' } end
  end
end

local events = {}
local function event(kind, b)
  events[#events + 1] = kind
  events[#events + 1] = cjson.encode(b)
end
local function remove(i, kind)
  local b = table.remove(live, i)
  redis.call('HDEL', KEYS[1], b.registration_id)
  redis.call('ZREM', KEYS[2], aor .. '\n' .. b.registration_id)
  event(kind, b)
end
local written = {}
if retransmission then
  -- applied once already: answer with the bindings as they are
elseif remove_all then
  while #live > 0 do remove(1, 'unregistered') end
else
  for _, c in ipairs(changes) do
    local i = find(c)
    if c.expires == 0 then
      if i then remove(i, 'unregistered') end
    else
      local b, kind = nil, 'refreshed'
      if i then
        b = live[i]
      else
        b, kind = { registration_id = c.id }, 'added'
        live[#live + 1] = b
      end
      b.contact, b.key, b.q = c.contact, c.key, c.q
      b.expires_at_ms = now + c.expires * 1000
      b.call_id, b.cseq, b.branch = call_id, cseq, branch
      b.source, b.transport, b.natted = source, transport, c.natted
      b.instance, b.reg_id, b.path = c.instance, c.reg_id, path
      b.refreshed_ms = now
      written[b.registration_id] = true
      event(kind, b)
    end
  end
  -- max_contacts: the binding refreshed least recently goes first, never one this
  -- request wrote.
  while #live > max_contacts do
    local victim = nil
    for i, b in ipairs(live) do
      if (b.refreshed_ms < now or b.call_id ~= call_id)
          and (victim == nil or b.refreshed_ms < live[victim].refreshed_ms) then
        victim = i
      end
    end
    if victim == nil then break end
    written[live[victim].registration_id] = nil
    remove(victim, 'evicted')
  end
end

local out, latest = {}, 0
for _, b in ipairs(live) do
  local json = cjson.encode(b)
  if written[b.registration_id] then
    redis.call('HSET', KEYS[1], b.registration_id, json)
    redis.call('ZADD', KEYS[2], b.expires_at_ms, aor .. '\n' .. b.registration_id)
  end
  if b.expires_at_ms > latest then latest = b.expires_at_ms end
  out[#out + 1] = json
end
-- Redis's own expiry drops the AOR when its last binding is past due (plus the time the
-- nodes have to report it).
if latest > 0 then redis.call('PEXPIREAT', KEYS[1], latest + grace) end
return { 'ok', out, events }
