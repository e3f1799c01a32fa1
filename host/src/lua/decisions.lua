-- The decision values of the sip table (sip.CONTINUE, sip.respond, ...), in Lua: building
-- one costs a table, where a call into Rust would cost several times more. A decision is
-- checked in Rust when a hook returns it (decision.rs): its arguments, and whether this
-- hook may return it. Returns the constructors, and flat(d) -> kind, a, b, c for callers,
-- the kind a number (decision.rs has the same list): an integer crosses into Rust for less
-- than a string.
local error, getmetatable, select, setmetatable, tostring, type =
  error, getmetatable, select, setmetatable, tostring, type
-- a decision is { kind, a, b, c } with this metatable

local mt = {}
local CONTINUE_K, ACCEPT_K, DROP_K, CHALLENGE_K, RESPOND_K, CREDENTIALS_K, AUTHENTICATED_K,
  TARGETS_K, INVALID_K = 0, 1, 2, 3, 4, 5, 6, 7, -1
local names = { [0] = "sip.CONTINUE", "sip.accept()", "sip.drop()", "sip.challenge()",
  "sip.respond()", "sip.credentials()", "sip.authenticated()", "sip.targets()" }
mt.__tostring = function(d)
  if d[1] == RESPOND_K then
    return "sip.respond(" .. tostring(d[2]) .. ")"
  end
  return names[d[1]]
end

local function make(kind, a, b, c)
  return setmetatable({ kind, a, b, c }, mt)
end

local CONTINUE, ACCEPT, DROP, CHALLENGE =
  make(CONTINUE_K), make(ACCEPT_K), make(DROP_K), make(CHALLENGE_K)

local D = {}
D.CONTINUE = CONTINUE

function D.accept()
  return ACCEPT
end

function D.drop()
  return DROP
end

function D.challenge(t)
  if t == nil then
    return CHALLENGE
  end
  return make(CHALLENGE_K, t)
end

function D.respond(code, reason, headers)
  return make(RESPOND_K, code, reason, headers)
end

function D.credentials(t)
  if type(t) ~= "table" then
    error("sip.credentials: give a table {username = ..., password = ... | ha1 = ...}", 2)
  end
  return make(CREDENTIALS_K, t.username, t.password, t.ha1)
end

function D.authenticated(username)
  return make(AUTHENTICATED_K, username)
end

function D.targets(...)
  return make(TARGETS_K, { n = select("#", ...), ... })
end

local function flat(d)
  if d == nil then
    return CONTINUE_K
  end
  if getmetatable(d) ~= mt then
    return INVALID_K, type(d)
  end
  return d[1], d[2], d[3], d[4]
end

return D, flat
