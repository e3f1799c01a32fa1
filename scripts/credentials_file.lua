-- Users and their HA1 from a CSV file, re-read when the file changes.
--
-- One user per line: `username,ha1` where ha1 is hex MD5(username:realm:password)
-- (32 digits) or SHA-256 (64 digits) for the configured realm; `#` starts a comment.
-- A user may register the aliases whose user part is their user name (alice registers
-- alice@<any served domain>).
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/credentials_file.lua"
--   config = { file = "users.csv" }
--
-- Make a line: printf 'alice:example.com:secret' | md5sum

local cfg = sip.config()
local file = cfg.file or "users.csv"
local text, err = sip.read_file(file)
if text == nil then
  error("credentials_file: cannot read " .. file .. ": " .. err)
end

local ha1s = {}
local n = 0
local lineno = 0
for line in (text .. "\n"):gmatch("([^\n]*)\n") do
  lineno = lineno + 1
  line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
  if line ~= "" then
    local user, ha1 = line:match("^([^,%s]+)%s*,%s*(%x+)$")
    if user == nil or (#ha1 ~= 32 and #ha1 ~= 64) then
      error("credentials_file: " .. file .. ":" .. lineno .. ": not `username,ha1` (32 or 64 hex digits)")
    end
    ha1s[user] = ha1:lower()
    n = n + 1
  end
end
sip.log.info("credentials loaded", { file = file, users = n })

local M = {}

function M.authenticate(ctx)
  local user = ctx.username
  if user == nil then
    return sip.challenge()
  end
  local ha1 = ha1s[user]
  if ha1 == nil then
    sip.log.info("Registration refused", { Alias = ctx.aor, Reason = "Invalid credentials", ["Supplied-username"] = user })
    return sip.challenge()
  end
  return sip.credentials { username = user, ha1 = ha1 }
end

function M.bind(ctx)
  local user = ctx.aor:match("^(.*)@")
  if ctx.identity ~= user then
    sip.log.info("Registration refused", {
      Alias = ctx.aor, Reason = "Invalid credentials",
      ["Expected-username"] = user, ["Supplied-username"] = ctx.identity,
    })
    return sip.respond(403)
  end
  return sip.accept()
end

return M
