-- The sandbox of every sipreg Lua state (run once, before the policy script loads).
-- Arguments: must_propagate(err) -> bool, plain_error(err) -> the message of an error a
-- sip function raised (else err itself), require(name), print(...), charge(units): counts
-- work done in C against the call's budget (raising the limit once it is spent).
-- Returns freeze(t, what): makes a table read-only (reads still work, pairs too), and
-- in_coroutine(): whether the running call is inside one of the script's coroutines.
local must_propagate, plain_error, sandbox_require, sandbox_print, charge = ...
local floor = math.floor

local error, next, select, setmetatable, tostring, type =
  error, next, select, setmetatable, tostring, type
local raw_pcall, raw_xpcall, raw_load, raw_rawset, raw_collect =
  pcall, xpcall, load, rawset, collectgarbage
local raw_resume, raw_close = coroutine.resume, coroutine.close

-- A hit limit (instruction budget, memory cap) is never caught: it ends the hook call.
-- Other errors are caught as usual; those of sip functions arrive as strings.
local function pass(ok, ...)
  if ok then
    return ok, ...
  end
  local e = ...
  if must_propagate(e) then
    error(e, 0)
  end
  return false, plain_error(e)
end

pcall = function(f, ...)
  return pass(raw_pcall(f, ...))
end
xpcall = function(f, handler, ...)
  return pass(raw_xpcall(f, handler, ...))
end
-- How deep the running call is in coroutines of its own: sip.http waits by yielding the
-- hook's own thread, which it cannot do from inside one of the script's coroutines.
local depth = 0
local function resumed(...)
  depth = depth - 1
  return pass(...)
end
local function sandbox_resume(co, ...)
  if type(co) ~= "thread" then
    return pass(raw_resume(co, ...))
  end
  depth = depth + 1
  return resumed(raw_resume(co, ...))
end
coroutine.resume = sandbox_resume
local raw_create = coroutine.create
local function unwrapped(ok, ...)
  if ok then
    return ...
  end
  error((...), 0)
end
coroutine.wrap = function(f)
  local co = raw_create(f)
  return function(...)
    return unwrapped(sandbox_resume(co, ...))
  end
end
local function in_coroutine()
  return depth > 0
end
coroutine.close = function(co)
  return pass(raw_close(co))
end

-- Source text only, never bytecode.
load = function(chunk, name, _mode, ...)
  if select("#", ...) > 0 then
    return raw_load(chunk, name, "t", ...)
  end
  return raw_load(chunk, name, "t")
end
dofile, loadfile = nil, nil
string.dump = nil

-- A collection runs in C, over the whole heap: each one is charged a unit per KiB of
-- heap, so `while true do collectgarbage() end` spends the budget instead of the clock.
collectgarbage = function(opt, ...)
  if opt == nil or opt == "step" or opt == "collect" then
    charge(1000 + floor(raw_collect("count")))
    return raw_collect(opt, ...)
  end
  if opt == "count" then
    return raw_collect(opt, ...)
  end
  error("collectgarbage: only \"count\", \"step\" and \"collect\" are allowed", 2)
end

require = sandbox_require
print = sandbox_print

-- No finalizers: Lua runs them with the instruction hook off, so a loop in a __gc would
-- wedge the state for good. Lua 5.4 marks an object for finalization only if its
-- metatable has a __gc field when setmetatable gives it (a __gc added to the metatable
-- later never runs), so refusing such a metatable here is enough.
local raw_rawget, raw_setmetatable = rawget, setmetatable
_G.setmetatable = function(t, mt)
  if type(mt) == "table" and raw_rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc finalizers are not allowed in sipreg scripts", 2)
  end
  return raw_setmetatable(t, mt)
end

-- table.move copies in C, where the instruction count never fires: table.move({}, 1, 1e15,
-- 1) would copy nils for ever. Long moves go in chunks, so the budget and the deadline
-- see them; short ones, and whatever the C function refuses, go straight to it.
do
  -- (`move`, so that the C function's errors name it as Lua's own do)
  local move, tointeger, maxinteger = table.move, math.tointeger, math.maxinteger
  local CHUNK = 64
  local function int(x)
    local n = x ~= nil and tonumber(x)
    return n and tointeger(n)
  end
  table.move = function(a1, f, e, t, a2)
    local fi, ei, ti = int(f), int(e), int(t)
    if not (fi and ei and ti) or ei < fi or ei - fi < CHUNK or type(a1) ~= "table"
      or (a2 ~= nil and type(a2) ~= "table") then
      return move(a1, f, e, t, a2)
    end
    if fi <= 0 and ei >= maxinteger + fi then
      error("bad argument #3 to 'move' (too many elements to move)", 2)
    end
    local n = ei - fi + 1
    if ti > maxinteger - n + 1 then
      error("bad argument #4 to 'move' (destination wrap around)", 2)
    end
    local dest = a2 == nil and a1 or a2
    if ti > ei or ti <= fi or (a2 ~= nil and a1 ~= a2) then
      for start = fi, ei, CHUNK do
        local stop = start + CHUNK - 1
        if stop > ei then stop = ei end
        move(a1, start, stop, ti + (start - fi), dest)
      end
    else
      for stop = ei, fi, -CHUNK do
        local start = stop - CHUNK + 1
        if start < fi then start = fi end
        move(a1, start, stop, ti + (start - fi), dest)
      end
    end
    return dest
  end
end

-- The string metatable is shared by every string; keep it out of reach.
getmetatable("").__metatable = false

local frozen = setmetatable({}, { __mode = "k" })

rawset = function(t, k, v)
  if frozen[t] then
    error(frozen[t] .. " is read-only: cannot set '" .. tostring(k) .. "'", 2)
  end
  return raw_rawset(t, k, v)
end

local function freeze(t, what)
  local hidden = {}
  for k, v in next, t do
    hidden[k] = v
  end
  for k in next, hidden do
    raw_rawset(t, k, nil)
  end
  frozen[t] = what
  setmetatable(t, {
    __index = hidden,
    __newindex = function(_, k)
      error(what .. " is read-only: cannot set '" .. tostring(k)
        .. "' (keep request state in a local, ctx.vars or sip.kv)", 2)
    end,
    __pairs = function()
      return next, hidden, nil
    end,
    __metatable = false,
  })
  return t
end

for _, name in ipairs({ "string", "table", "math", "utf8", "os", "coroutine" }) do
  freeze(_G[name], name)
end

return freeze, in_coroutine
