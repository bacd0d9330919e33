-- One rate-limit decision, atomically (see memory.go for the algorithm).
-- KEYS[1]: burst log (sorted set of admitted requests, scored by time in µs)
-- KEYS[2]: daily buckets (hash: bucket number -> count)
-- ARGV: now µs ('' = Redis's clock), burst window µs, burst limit,
--       bucket span µs, daily limit, unique member, buckets in the ring
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local bw, bl = tonumber(ARGV[2]), tonumber(ARGV[3])
local span, dl = tonumber(ARGV[4]), tonumber(ARGV[5])
local member, nb = ARGV[6], tonumber(ARGV[7])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - bw)
local used = redis.call('ZCARD', KEYS[1])

local b = math.floor(now / span)
local oldest = b - nb + 1
local fields = redis.call('HGETALL', KEYS[2])
local buckets, day = {}, 0
for i = 1, #fields, 2 do
  local k, c = tonumber(fields[i]), tonumber(fields[i + 1])
  if k < oldest then
    redis.call('HDEL', KEYS[2], fields[i])
  else
    day = day + c
    buckets[#buckets + 1] = {k, c}
  end
end

local allowed = 0
if used < bl and day < dl then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. member)
  redis.call('HINCRBY', KEYS[2], tostring(b), 1)
  used, day, allowed = used + 1, day + 1, 1
  buckets[#buckets + 1] = {b, 1}
end
redis.call('PEXPIRE', KEYS[1], math.floor(bw / 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.floor(nb * span / 1000) + 1000)

table.sort(buckets, function(x, y) return x[1] < y[1] end)
local burstReset, dailyReset, retry = 0, 0, 0
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first > 0 then burstReset = tonumber(first[2]) + bw - now end
if #buckets > 0 then dailyReset = (buckets[1][1] + nb) * span - now end
if allowed == 0 then
  if used >= bl then
    local e = redis.call('ZRANGE', KEYS[1], used - bl, used - bl, 'WITHSCORES')
    retry = tonumber(e[2]) + bw - now
  end
  if day >= dl then
    local left = day
    for _, kc in ipairs(buckets) do
      left = left - kc[2]
      if left < dl then
        retry = math.max(retry, (kc[1] + nb) * span - now)
        break
      end
    end
  end
end
return {allowed, used, day, burstReset, dailyReset, retry}
