-- Maintenance mode: new registrations and refreshes get 503 Service Unavailable (with
-- Retry-After) while maintenance is on; de-registrations (every contact with expires 0,
-- or Contact: *) and queries still work, so devices can leave cleanly.
--
-- Maintenance is on when any of these holds:
--   - config.enabled = true;
--   - the flag file exists (config.flag_file, relative to the configuration's folder):
--     `touch maintenance.flag` turns it on, `rm maintenance.flag` off (the script reloads
--     when the file appears or goes);
--   - sip.kv key "maintenance" is true (another script or the admin interface sets it).
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/maintenance.lua"
--   config = { flag_file = "maintenance.flag", retry_after = 300 }

local cfg = sip.config()
local retry_after = cfg.retry_after or 300
local flagged = cfg.enabled == true
if cfg.flag_file then
  flagged = flagged or sip.read_file(cfg.flag_file) ~= nil
end

local function on()
  return flagged or sip.kv.get("maintenance") == true
end

-- Whether a REGISTER only removes bindings (or only asks for them).
local function leaving()
  local contacts = sip.contacts()
  if contacts == nil or #contacts == 0 then
    return true -- a query, or a malformed Contact the registrar will refuse
  end
  if contacts[1].wildcard then
    return true
  end
  local header = tonumber(sip.header("Expires") or "")
  for _, c in ipairs(contacts) do
    local expires = c.expires or header
    if expires ~= 0 then
      return false
    end
  end
  return true
end

local M = {}

function M.on_request(ctx)
  if sip.method() ~= "REGISTER" or not on() or leaving() then
    return sip.CONTINUE
  end
  sip.log.info("Registration refused", { Alias = sip.to().uri, Reason = "Maintenance mode" })
  return sip.respond(503, "Service Unavailable", { ["Retry-After"] = retry_after })
end

return M
