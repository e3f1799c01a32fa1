-- The policy of the hook batteries (host/tests/it/battery/), as a script: the same policy
-- as the battery plugin (host/tests/plugins/battery) and the built-in alias list with the
-- batteries' Rust hooks, so that each battery gets the same answers from all three.

local aliases = {
  ["alice@example.com"] = { user = "alice", tcp = true },
  ["bob@example.com"] = { user = "bob", tcp = false },
  ["quinn@example.com"] = { user = "quinn", tcp = true },
}
local passwords = { alice = "wonderland", bob = "builder", quinn = "quinn-pw" }

local M = {}

function M.on_request(ctx)
  local test = sip.header("X-Test")
  if test == "maintenance" then
    return sip.respond(503, "Maintenance")
  elseif test == "drop" then
    return sip.drop()
  elseif test == "fail" then
    error("asked to fail")
  end
end

function M.authenticate(ctx)
  if aliases[ctx.aor] == nil then
    return sip.respond(403)
  end
  local password = ctx.username and passwords[ctx.username]
  if password == nil then
    if ctx.aor == "quinn@example.com" then
      return sip.challenge { algorithms = { "SHA-256", "MD5" } }
    end
    return sip.challenge()
  end
  return sip.credentials { username = ctx.username, password = password }
end

function M.bind(ctx)
  local a = aliases[ctx.aor]
  if a == nil or ctx.identity ~= a.user or (sip.transport() == "tcp" and not a.tcp) then
    return sip.respond(403)
  end
  if ctx.aor == "quinn@example.com" then
    ctx.limits = { max_contacts = 1, evict = "refuse", min_expires = 60, max_expires = 120 }
    ctx.reply_headers = {
      ["P-Associated-URI"] = "<sip:quinn@example.com>",
      ["Service-Route"] = "<sip:edge.example.com;lr>",
    }
  end
  return sip.accept()
end

function M.expire(ctx)
  sip.kv.set("expired:" .. ctx.binding.aor, ctx.binding.reason)
end

function M.route(ctx)
  local uri = sip.request_uri()
  if uri:find("^sip:support@example%.com") then
    return sip.targets("sip:bob@example.com")
  elseif uri:find("^sip:closed@example%.com") then
    return sip.respond(480, "Closed")
  end
end

return M
