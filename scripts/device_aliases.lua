-- Device aliases, Pexip style: only listed aliases may register, each over the protocols
-- enabled for it, with its own credentials (or none).
--
-- The list is a file (config.file, relative to the configuration's folder), one alias per
-- line: `alias,protocols[,username,password]`, protocols separated by spaces
-- (`udp tcp`), `#` starts a comment. The script reloads when the file changes.
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/device_aliases.lua"
--   config = { file = "aliases.csv", unknown_alias = "forbidden" }  # or "not-found", "challenge"
--
-- Refusals are logged like Pexip's support log: "Registration refused" with Reason
-- "Alias not found", "Invalid credentials" (with the expected and supplied user names) or
-- "Protocol not enabled for alias".

local cfg = sip.config()
local file = cfg.file or "aliases.csv"
local unknown = cfg.unknown_alias or "forbidden"

local aliases = {}
local passwords = {} -- by digest user name
local text, err = sip.read_file(file)
if text == nil then
  error("device_aliases: cannot read the alias list: " .. err)
end
local n = 0
for line in text:gmatch("[^\r\n]+") do
  line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
  if line ~= "" then
    local alias, protocols, username, password = line:match("^([^,]+),([^,]*),?([^,]*),?(.*)$")
    if alias == nil then
      error("device_aliases: " .. file .. ": not `alias,protocols[,username,password]`: " .. line)
    end
    local enabled = {}
    for p in protocols:gmatch("%a+") do
      enabled[p:lower()] = true
    end
    username = username ~= "" and username or nil
    password = password ~= "" and password or nil
    aliases[alias:lower()] = { protocols = enabled, username = username, password = password }
    if username and password then
      if passwords[username] and passwords[username] ~= password then
        error("device_aliases: " .. file .. ": user " .. username .. " has two passwords")
      end
      passwords[username] = password
    end
    n = n + 1
  end
end
sip.log.info("device aliases loaded", { file = file, aliases = n })

local function refused(ctx, reason, fields)
  fields = fields or {}
  fields.Alias = ctx.aor
  fields.Reason = reason
  fields.Source = (sip.source())
  sip.log.info("Registration refused", fields)
end

local M = {}

function M.authenticate(ctx)
  local entry = aliases[ctx.aor]
  if entry == nil then
    refused(ctx, "Alias not found")
    if unknown == "not-found" then
      return sip.respond(404)
    elseif unknown == "challenge" then
      return sip.challenge() -- and never credentials: a scanner learns nothing
    end
    return sip.respond(403)
  end
  if entry.password == nil then
    return sip.authenticated(entry.username or ctx.aor)
  end
  if ctx.username == nil then
    return sip.challenge()
  end
  local password = passwords[ctx.username]
  if password == nil then
    refused(ctx, "Invalid credentials",
      { ["Expected-username"] = entry.username, ["Supplied-username"] = ctx.username })
    return sip.challenge()
  end
  -- the digest is checked against the user's own password; bind then checks that the
  -- user owns this alias (RFC 3261 10.3 step 6: 403 if not)
  return sip.credentials { username = ctx.username, password = password }
end

function M.bind(ctx)
  local entry = aliases[ctx.aor]
  if entry == nil then
    return sip.respond(403)
  end
  if entry.username and entry.password and ctx.identity ~= entry.username then
    refused(ctx, "Invalid credentials",
      { ["Expected-username"] = entry.username, ["Supplied-username"] = ctx.identity })
    return sip.respond(403)
  end
  local transport = sip.transport()
  if not entry.protocols[transport] then
    refused(ctx, "Protocol not enabled for alias", { Protocol = transport:upper() })
    return sip.respond(403, "Forbidden (" .. transport .. " not enabled for alias)")
  end
  return sip.accept()
end

return M
