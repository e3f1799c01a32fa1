-- The Pexip administrator log, written by a script: "Registration added" when a REGISTER
-- is about to add a binding, "Registration deleted" when one goes (expired, removed by
-- the device, evicted), with Alias, Protocol, Registration-id, Natted, Location and Reason.
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/admin_log.lua"
--   config = { location = "Europe" }
--
-- "Registration added" is written by `bind`, before the store is updated: a REGISTER that
-- the store then refuses (a CSeq out of order) has its line all the same. Its
-- Registration-id is the one the binding gets.

local location = sip.config().location or "default"

local M = {}

function M.bind(ctx)
  for _, b in ipairs(ctx.bindings) do
    if b.new and b.expires > 0 then
      sip.log.info("Registration added", {
        Alias = ctx.aor,
        Protocol = "SIP",
        Transport = b.transport:upper(),
        ["Registration-id"] = b.registration_id,
        Location = location,
      })
    end
  end
  return sip.CONTINUE
end

function M.expire(ctx)
  local b = ctx.binding
  sip.log.info("Registration deleted", {
    Alias = b.aor,
    Protocol = "SIP",
    Transport = b.transport:upper(),
    ["Registration-id"] = b.registration_id,
    Natted = b.natted and "True" or "False",
    Location = location,
    Reason = b.reason_text,
  })
end

return M
