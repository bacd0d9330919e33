-- One attempt reserved, atomically (see memory.go for the same rules).
-- KEYS[1]: the username's log (sorted set; member = address digest .. ':'
--          .. attempt id, score = time in µs)
-- KEYS[2]: the address's log (sorted set; member = attempt id)
-- ARGV: now µs ('' = Redis's clock), address digest, attempt id,
--       per-username-and-address limit and window µs,
--       per-username limit and window µs, per-address limit and window µs
-- Returns {1, 0} when counted, {0, wait µs} when refused.
-- Times are passed to Redis as numbers, never concatenated into strings
-- (Lua would print them in 14 significant digits).
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tag, id = ARGV[2], ARGV[3]
local pl, pw = tonumber(ARGV[4]), tonumber(ARGV[5])
local ul, uw = tonumber(ARGV[6]), tonumber(ARGV[7])
local al, aw = tonumber(ARGV[8]), tonumber(ARGV[9])
local keep = math.max(pw, uw)

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - aw)

local wait = 0
-- Per username: the (n - limit + 1)-th oldest must leave first.
local u = redis.call('ZRANGEBYSCORE', KEYS[1], now - uw + 1, '+inf', 'WITHSCORES')
local n = #u / 2
if n >= ul then
  wait = math.max(wait, tonumber(u[2 * (n - ul) + 2]) + uw - now)
end
-- Per username and address.
local p = redis.call('ZRANGEBYSCORE', KEYS[1], now - pw + 1, '+inf', 'WITHSCORES')
local pair = {}
for i = 1, #p, 2 do
  if string.sub(p[i], 1, #tag + 1) == tag .. ':' then
    pair[#pair + 1] = tonumber(p[i + 1])
  end
end
if #pair >= pl then
  wait = math.max(wait, pair[#pair - pl + 1] + pw - now)
end
-- Per address.
local a = redis.call('ZRANGEBYSCORE', KEYS[2], now - aw + 1, '+inf', 'WITHSCORES')
n = #a / 2
if n >= al then
  wait = math.max(wait, tonumber(a[2 * (n - al) + 2]) + aw - now)
end
if wait > 0 then
  return {0, wait}
end

redis.call('ZADD', KEYS[1], now, tag .. ':' .. id)
redis.call('ZADD', KEYS[2], now, id)
redis.call('PEXPIRE', KEYS[1], math.floor(keep / 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.floor(aw / 1000) + 1000)
return {1, 0}
