-- The benchmark policy: what ../shared/bench/kamailio/registrar.lua does for Kamailio,
-- so that compare.sh measures Lua against Lua.
--
-- Passwords come from a table built when the script loads (Kamailio's loads an htable:
-- user0000..user9999 with pw-0000..pw-9999, as the benchmark's gen-users.sh writes them),
-- every known user is checked by digest, and the authenticated user must be the To user.
--
--   SIPREG_BIN=target/release/sipreg SIPREG_LUA=scripts/bench_auth.lua ../shared/bench/compare.sh

local passwords = {}
for i = 0, 9999 do
  passwords[string.format("user%04d", i)] = string.format("pw-%04d", i)
end

local M = {}

function M.authenticate(ctx)
  local user = ctx.username
  local password = user and passwords[user]
  if password == nil then
    return sip.challenge()
  end
  return sip.credentials { username = user, password = password }
end

function M.bind(ctx)
  -- like Kamailio's auth check 1: the digest user must be the To user
  if ctx.identity ~= nil and ctx.aor:sub(1, #ctx.identity + 1) ~= ctx.identity .. "@" then
    return sip.respond(403, "Forbidden")
  end
  return sip.accept()
end

return M
