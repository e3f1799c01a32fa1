-- Users' credentials from a REST service.
--
-- For the digest user name of a REGISTER, GET the `url` of `config` ({user} replaced by
-- the user name, percent-encoded; {domain} by the alias's domain):
--   200 with a JSON object   the secret is its `field`: an HA1 in hex for the configured
--                            realm (`secret = "ha1"`, the default) or the plaintext
--                            password (`secret = "password"`, which SHA-256 needs);
--   404                      no such user: challenged again, as a wrong password is;
--   anything else            a timeout, a refused connection, a 5xx, a body that is not
--                            JSON or lacks the field: an outage of the service, and the
--                            REGISTER gets what the entry's `on_outage` says (503 with
--                            Retry-After by default), never a 200.
-- Answers are cached (`sip.cache`): a user's secret for `cache_ttl` seconds, an unknown
-- user for `negative_ttl`. While the service is down, cached users still register.
-- A user registers the aliases whose user part is their user name (alice registers
-- alice@<any served domain>), unless `own_aliases = false`.
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/http_auth.lua"
--   allow_http = ["http://127.0.0.1:8080/users/"]
--   config = { url = "http://127.0.0.1:8080/users/{user}", field = "ha1" }
--
-- config keys: url (required), field ("ha1"), secret ("ha1" | "password"), timeout_ms
-- (500), cache_ttl (60; 0 caches nothing), negative_ttl (10; 0 remembers no unknown user),
-- headers (a table sent with every lookup, e.g. { Authorization = "Bearer ..." }),
-- own_aliases (true).

local cfg = sip.config()
local url = cfg.url
if type(url) ~= "string" or not url:find("{user}", 1, true) then
  error("http_auth: config.url must be a URL with {user} in it")
end
local field = cfg.field or "ha1"
local secret = cfg.secret or "ha1"
if secret ~= "ha1" and secret ~= "password" then
  error("http_auth: config.secret must be \"ha1\" or \"password\"")
end
local timeout_ms = cfg.timeout_ms or 500
local cache_ttl = cfg.cache_ttl or 60
local negative_ttl = cfg.negative_ttl or 10
local headers = cfg.headers or {}
local own_aliases = cfg.own_aliases ~= false

-- Everything but unreserved characters percent-encoded (RFC 3986 section 2.3).
local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- The secret of `user`, false for a user the service does not know.
local function lookup(user, domain)
  local key = domain .. "\0" .. user
  -- "." and ".." are path segments however they are encoded (URL parsers resolve
  -- them): no user of the service has those names.
  if user == "." or user == ".." or domain == "." or domain == ".." then
    return false
  end
  local cached = sip.cache.get(key)
  if cached ~= nil then
    return cached
  end
  local target = url:gsub("{user}", (encode(user):gsub("%%", "%%%%")))
  target = target:gsub("{domain}", (encode(domain):gsub("%%", "%%%%")))
  local answer = sip.http.get(target, { headers = headers, timeout_ms = timeout_ms })
  local found
  if answer.status == 404 then
    found = false
  elseif answer.status == 200 then
    local body = answer:json()
    local value = type(body) == "table" and body[field] or nil
    if type(value) ~= "string" or value == "" then
      answer:outage("its answer has no string field `" .. field .. "`")
    end
    found = value
  else
    answer:outage("answered " .. answer.status)
  end
  local ttl = found and cache_ttl or negative_ttl
  if ttl > 0 then
    sip.cache.set(key, found, ttl)
  end
  return found
end

local M = {}

function M.authenticate(ctx)
  local user = ctx.username
  if user == nil then
    return sip.challenge()
  end
  local domain = ctx.aor:match("@(.*)$") or ""
  local found = lookup(user, domain)
  if not found then
    sip.log.info("Registration refused", { Alias = ctx.aor, Reason = "Invalid credentials", ["Supplied-username"] = user })
    return sip.challenge()
  end
  if secret == "password" then
    return sip.credentials { username = user, password = found }
  end
  return sip.credentials { username = user, ha1 = found:lower() }
end

function M.bind(ctx)
  if not own_aliases then
    return sip.accept()
  end
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
