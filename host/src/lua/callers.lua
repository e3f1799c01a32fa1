-- How sipreg calls a script's hook: one caller per hook builds the `ctx` table from plain
-- arguments (a table constructor in Lua costs far less than building it field by field
-- from Rust), calls the hook, and returns ctx.vars when it holds anything, the decision as
-- kind, a, b, c (decisions.lua's flat), and for `bind` ctx.limits, ctx.reply_headers
-- and the `expires` and `q` of every binding.
local flat = ...
local error, next, select, type, unpack = error, next, select, type, table.unpack

-- ctx.vars of a request without vars: one empty table, used until a hook fills it.
local spare = {}

local function empty()
  if next(spare) ~= nil then -- a failed call left something behind
    spare = {}
  end
  return spare
end

local function vars_out(vars)
  if type(vars) ~= "table" then
    error("ctx.vars must stay a table", 0)
  end
  if next(vars) == nil then
    return nil
  end
  if vars == spare then
    spare = {}
  end
  return vars
end

local callers = {}

function callers.on_request(f, vars)
  local ctx = { hook = "on_request", vars = vars or empty() }
  local k, a, b, c = flat(f(ctx))
  return vars_out(ctx.vars), k, a, b, c
end

function callers.route(f, vars)
  local ctx = { hook = "route", vars = vars or empty() }
  local k, a, b, c = flat(f(ctx))
  return vars_out(ctx.vars), k, a, b, c
end

function callers.authenticate(f, vars, aor, username, realm)
  local ctx = { hook = "authenticate", vars = vars or empty(), aor = aor, username = username, realm = realm }
  local k, a, b, c = flat(f(ctx))
  return vars_out(ctx.vars), k, a, b, c
end

-- Each binding comes as 7 values: contact, expires, q, instance, reg_id, registration_id,
-- new, and the request's source and transport are shared.
function callers.bind(f, vars, aor, identity, kind, source, transport, n, ...)
  local list = {}
  for i = 1, n do
    local contact, expires, q, instance, reg_id, registration_id, new = select((i - 1) * 7 + 1, ...)
    list[i] = {
      aor = aor, contact = contact, expires = expires, q = q, instance = instance,
      reg_id = reg_id, registration_id = registration_id, new = new,
      source = source, transport = transport,
    }
  end
  local ctx = {
    hook = "bind", vars = vars or empty(), aor = aor, identity = identity, kind = kind, bindings = list,
  }
  local k, a, b, c = flat(f(ctx))
  local limits, headers = ctx.limits, ctx.reply_headers
  if n == 0 then
    return vars_out(ctx.vars), k, a, b, c, limits, headers
  end
  if n == 1 then
    return vars_out(ctx.vars), k, a, b, c, limits, headers, list[1].expires, list[1].q
  end
  local out = {}
  for i = 1, n do
    out[2 * i - 1] = list[i].expires
    out[2 * i] = list[i].q
  end
  return vars_out(ctx.vars), k, a, b, c, limits, headers, unpack(out, 1, 2 * n)
end

function callers.expire(f, _vars, aor, contact, q, instance, reg_id, registration_id, source, transport,
                        natted, reason, reason_text)
  local ctx = {
    hook = "expire", vars = {},
    binding = {
      aor = aor, contact = contact, expires = 0, q = q, instance = instance, reg_id = reg_id,
      registration_id = registration_id, source = source, transport = transport,
      natted = natted, reason = reason, reason_text = reason_text,
    },
  }
  f(ctx)
  return nil
end

return callers
