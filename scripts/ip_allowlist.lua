-- Source address allow-list: requests from networks not listed are refused (403) or
-- dropped without an answer; optionally, devices on trusted networks register without
-- digest authentication (as the user of their To address).
--
--   [[hooks]]
--   type = "lua"
--   script = "../scripts/ip_allowlist.lua"
--   config = { allow = ["192.0.2.0/24", "2001:db8::/32", "127.0.0.1"],
--              action = "forbid",          # or "drop"
--              trust = ["192.0.2.0/28"] }  # optional: no digest from these
--
-- IPv4 and IPv6 networks in CIDR notation; an address without /bits is one host.

local cfg = sip.config()

-- An address as a list of 16-bit groups (IPv4: 2 groups, IPv6: 8), or nil.
local function parse(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a > 255 or b > 255 or c > 255 or d > 255 then
      return nil
    end
    return { a * 256 + b, c * 256 + d }
  end
  if not ip:find(":") then
    return nil
  end
  local head, tail = ip:match("^(.-)::(.*)$")
  local function groups(s)
    local out = {}
    if s == "" then
      return out
    end
    for g in (s .. ":"):gmatch("([^:]*):") do
      local v = tonumber(g, 16)
      if v == nil or #g > 4 then
        return nil
      end
      out[#out + 1] = v
    end
    return out
  end
  local out
  if head then
    local h, t = groups(head), groups(tail)
    if h == nil or t == nil or #h + #t > 7 then
      return nil
    end
    out = h
    for _ = 1, 8 - #h - #t do
      out[#out + 1] = 0
    end
    for _, v in ipairs(t) do
      out[#out + 1] = v
    end
  else
    out = groups(ip)
    if out == nil or #out ~= 8 then
      return nil
    end
  end
  return out
end

local function network(text)
  local ip, bits = text:match("^([^/]+)/(%d+)$")
  ip = ip or text
  local groups = parse(ip)
  if groups == nil then
    error("ip_allowlist: \"" .. text .. "\" is not an address or network")
  end
  bits = tonumber(bits) or #groups * 16
  if bits > #groups * 16 then
    error("ip_allowlist: \"" .. text .. "\" has too many bits")
  end
  return { groups = groups, bits = bits }
end

local function networks(list)
  local out = {}
  for i, text in ipairs(list or {}) do
    out[i] = network(text)
  end
  return out
end

local allow = networks(cfg.allow)
local trust = networks(cfg.trust)
local action = cfg.action or "forbid"

local function within(groups, net)
  if #groups ~= #net.groups then
    return false
  end
  local left = net.bits
  for i = 1, #groups do
    if left <= 0 then
      return true
    end
    local take = math.min(left, 16)
    local mask = (0xffff << (16 - take)) & 0xffff
    if groups[i] & mask ~= net.groups[i] & mask then
      return false
    end
    left = left - take
  end
  return true
end

local function listed(nets, ip)
  local groups = parse(ip)
  if groups == nil then
    return false
  end
  for _, net in ipairs(nets) do
    if within(groups, net) then
      return true
    end
  end
  return false
end

local M = {}

function M.on_request(ctx)
  local ip = sip.source()
  if listed(allow, ip) or listed(trust, ip) then
    return sip.CONTINUE
  end
  sip.log.info("Request refused", { Source = ip, Reason = "Source not allowed", Method = sip.method() })
  if action == "drop" then
    return sip.drop()
  end
  return sip.respond(403, "Forbidden (source not allowed)")
end

function M.authenticate(ctx)
  if #trust > 0 and listed(trust, (sip.source())) then
    return sip.authenticated(sip.to().user)
  end
  return sip.CONTINUE
end

return M
