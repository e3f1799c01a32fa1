-- Locks a user, and a source address, out after N failed authentications in a row.
--
-- A REGISTER that carries credentials and then does not reach `bind` failed (wrong
-- password, unknown user): `authenticate` counts attempts per user and per source in
-- sip.kv, `bind` (reached only once the digest is right) clears them. Once either count
-- has reached `attempts`, that user or source gets 403 "Locked out" for `lock_seconds`.
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/lockout.lua"
--   config = { attempts = 5, window_seconds = 300, lock_seconds = 900 }
--
-- Put it first: it answers before any other policy is asked.

local cfg = sip.config()
local attempts = cfg.attempts or 5
local window = cfg.window_seconds or 300
local lock = cfg.lock_seconds or 900

-- Whether `key` is locked out now (a count that reached `attempts` locks it).
local function locked(ctx, key, what)
  if sip.kv.get("lockout:locked:" .. key) then
    sip.log.warn("Registration refused", { Alias = ctx.aor, Reason = "Locked out", Locked = what })
    return true
  end
  local n = sip.kv.get("lockout:fails:" .. key) or 0
  if n >= attempts then
    sip.kv.set("lockout:locked:" .. key, true, lock)
    sip.kv.delete("lockout:fails:" .. key)
    sip.log.warn("Locked out", { Locked = what, Attempts = n, Seconds = lock })
    sip.log.warn("Registration refused", { Alias = ctx.aor, Reason = "Locked out", Locked = what })
    return true
  end
  return false
end

local M = {}

function M.authenticate(ctx)
  local ip = sip.source()
  local user = ctx.username
  if locked(ctx, "source:" .. ip, ip) or (user and locked(ctx, "user:" .. user, user)) then
    return sip.respond(403, "Locked out")
  end
  if user then
    -- counted now, forgiven in bind if the digest turns out right
    sip.kv.incr("lockout:fails:source:" .. ip, 1, window)
    sip.kv.incr("lockout:fails:user:" .. user, 1, window)
  end
  return sip.CONTINUE
end

function M.bind(ctx)
  sip.kv.delete("lockout:fails:source:" .. (sip.source()))
  if ctx.identity then
    sip.kv.delete("lockout:fails:user:" .. ctx.identity)
  end
  return sip.CONTINUE
end

return M
