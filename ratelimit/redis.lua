-- ratelimit(keys, ko, argv, ao): one rate-limit decision over a request's
-- budgets, atomically (see memory.go for the algorithm): the request is
-- admitted only if every budget has room in both windows, and is then
-- counted against every one; a refusal counts against none. The budgets
-- are keys[ko+1 ..], the arguments argv[ao+1 .. ao+7], so that a larger
-- script (the cluster's admission) can run it after keys of its own.
-- keys[ko+2i-1]: budget i's burst log (sorted set of admitted requests,
--                scored by time in µs)
-- keys[ko+2i]:   budget i's daily buckets (hash: bucket number -> count)
-- argv: now µs ('' = Redis's clock), burst window µs, burst limit,
--       bucket span µs, daily limit, unique member, buckets in the ring
-- Returns {allowed, then per budget: burst used, day used, burst reset µs,
--          daily reset µs, retry after µs (0 for a budget with room)}.
local function ratelimit(keys, ko, argv, ao)
  local now = tonumber(argv[ao + 1])
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local bw, bl = tonumber(argv[ao + 2]), tonumber(argv[ao + 3])
  local span, dl = tonumber(argv[ao + 4]), tonumber(argv[ao + 5])
  local member, nb = argv[ao + 6], tonumber(argv[ao + 7])
  local n = (#keys - ko) / 2

  local b = math.floor(now / span)
  local oldest = b - nb + 1

  -- Bring every budget up to now and see whether all have room.
  local used, day, buckets = {}, {}, {}
  local allowed = 1
  for i = 1, n do
    local log, days = keys[ko + 2 * i - 1], keys[ko + 2 * i]
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - bw)
    used[i] = redis.call('ZCARD', log)
    local fields = redis.call('HGETALL', days)
    local kb, d = {}, 0
    for j = 1, #fields, 2 do
      local k, c = tonumber(fields[j]), tonumber(fields[j + 1])
      if k < oldest then
        redis.call('HDEL', days, fields[j])
      else
        d = d + c
        kb[#kb + 1] = {k, c}
      end
    end
    day[i], buckets[i] = d, kb
    if used[i] >= bl or d >= dl then allowed = 0 end
  end

  local out = {allowed}
  for i = 1, n do
    local log, days = keys[ko + 2 * i - 1], keys[ko + 2 * i]
    local kb = buckets[i]
    if allowed == 1 then
      redis.call('ZADD', log, now, now .. ':' .. member)
      redis.call('HINCRBY', days, tostring(b), 1)
      used[i], day[i] = used[i] + 1, day[i] + 1
      kb[#kb + 1] = {b, 1}
    end
    redis.call('PEXPIRE', log, math.floor(bw / 1000) + 1000)
    redis.call('PEXPIRE', days, math.floor(nb * span / 1000) + 1000)

    table.sort(kb, function(x, y) return x[1] < y[1] end)
    local burstReset, dailyReset, retry = 0, 0, 0
    local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    if #first > 0 then burstReset = tonumber(first[2]) + bw - now end
    if #kb > 0 then dailyReset = (kb[1][1] + nb) * span - now end
    if allowed == 0 then
      if used[i] >= bl then
        local e = redis.call('ZRANGE', log, used[i] - bl, used[i] - bl, 'WITHSCORES')
        retry = tonumber(e[2]) + bw - now
      end
      if day[i] >= dl then
        local left = day[i]
        for _, kc in ipairs(kb) do
          left = left - kc[2]
          if left < dl then
            retry = math.max(retry, (kc[1] + nb) * span - now)
            break
          end
        end
      end
    end
    out[#out + 1] = used[i]
    out[#out + 1] = day[i]
    out[#out + 1] = burstReset
    out[#out + 1] = dailyReset
    out[#out + 1] = retry
  end
  return out
end
