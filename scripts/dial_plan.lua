-- Dial plan: where calls to short numbers go, in the spirit of Pexip's call routing
-- rules (match the dialled string, rewrite it, send the call there).
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/dial_plan.lua"
--   [hooks.config]
--   # An extension dialled as sip:1001@<any of our hosts> reaches this alias.
--   extensions = { "1001" = "alice@example.com", "1002" = "bob@example.com" }
--   # Then the rules, in order: a Lua pattern over the dialled user part, and the target
--   # URI it becomes (%1, %2: the pattern's captures). The first rule that matches wins.
--   rules = [
--     { match = "^9(%d+)$", target = "sip:%1@gateway.example.com" },   # 9 + number: out
--   ]
--
-- A dialled number that no extension or rule knows goes on unchanged (the registrar's
-- own routing: a binding, 480 for an alias without one, 404 for an unknown alias). Only
-- requests outside a dialog reach `route`; the log line "Dial plan" says what was chosen.

local cfg = sip.config()
local extensions = cfg.extensions or {}
local rules = {}
for i, r in ipairs(cfg.rules or {}) do
  if type(r.match) ~= "string" or type(r.target) ~= "string" then
    error("rules[" .. i .. "] needs match and target strings")
  end
  -- a bad pattern is a load error, not a failed call
  local ok, err = pcall(string.find, "", r.match)
  if not ok then
    error("rules[" .. i .. "].match: " .. err)
  end
  rules[#rules + 1] = r
end

local M = {}

function M.route(ctx)
  local user = sip.request_uri():match("^sips?:([^@;?]+)@")
  if not user then
    return sip.CONTINUE
  end
  local alias = extensions[user]
  if alias then
    sip.log.info("Dial plan", { Dialled = user, Alias = alias })
    return sip.targets("sip:" .. alias)
  end
  for i, r in ipairs(rules) do
    local target, n = user:gsub(r.match, r.target)
    if n > 0 then
      sip.log.info("Dial plan", { Dialled = user, Rule = i, Target = target })
      return sip.targets(target)
    end
  end
  return sip.CONTINUE
end

return M
