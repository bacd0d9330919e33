-- decide(keys, ko, argv, ao, confirm): the rate-limit decisions of a batch
-- of requests, one after the other, in one atomic step (see memory.go for
-- the algorithm). Each request is admitted only if every one of its
-- budgets has room in both windows, and is then counted against every
-- one; a refusal counts against none. Deciding a batch is deciding its
-- requests in turn, each in a call of its own, at the same instant.
--
-- keys[ko+2p-1]: budget p's burst log: a list of the admitted requests'
--                times in µs, oldest first (none under a burst limit of
--                UNBOUNDED, which never binds: a quota's)
-- keys[ko+2p]:   budget p's daily buckets: a hash of bucket number ->
--                count, beside 't' (their sum), 'lo' (the oldest
--                non-empty bucket), 'sp' (the span they are cut in) and
--                'la' (when the newest request counted was, µs)
-- argv[ao+1], argv[ao+2]: now µs ('' = Redis's clock), buckets in the ring
-- then the batch's distinct confirm fields: their number, and two each
-- then its distinct limits: their number, and four each (burst window µs,
--       burst limit, bucket span µs, daily limit)
-- then the seeds: -1 when a quota's budget that Redis does not hold
--       counts from nothing; otherwise their number, and two each (budget
--       number p, the count it starts from)
-- then per run of n identical requests (n from 1): n, the number of their
--       confirm fields (from 1), m, and for each of their m budgets its
--       number p and the number of its limits (from 1): each budget of a
--       request has limits of its own; a run's budgets are distinct
--
-- Returns, per run: 0 when confirm(field1, field2) is false (nothing
-- decided, nothing counted); -1, with seeds given, when one of its quota
-- budgets (burst limit UNBOUNDED) is not held and has no seed (nothing
-- decided, nothing counted: the caller reads what its store counted and
-- sends the run again with that seed, which counts only if the budget is
-- still not held, so that a budget Redis lost goes on from what the store
-- kept rather than from nothing); otherwise a+1, where a is how many of its
-- requests were admitted (the first a), and the values of its first
-- request, then, when 0 < a < n, those of its first refused. A request's
-- values are, per budget: burst used, day used, burst reset µs, daily
-- reset µs, retry after µs (0 for a budget with room). The k-th admitted
-- request's are the first's with day used, and burst used where the
-- budget keeps a log, k-1 higher; every refused request's are the first
-- refused's.
--
-- Each budget is read once per batch and written once at its end, with a
-- few O(1) calls: the log loses its expired head and gains a tail; the
-- buckets are read through their running total, and walked only when one
-- leaves the ring (once per span) or a refusal needs the wait.
local UNBOUNDED = 1073741824 -- ratelimit.UnboundedBurst

local function decide(keys, ko, argv, ao, confirm)
  local now = tonumber(argv[ao + 1])
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local nb = tonumber(argv[ao + 2])
  -- num reads a number argument; the requests of a batch mostly repeat
  -- theirs, so each distinct string is converted once.
  local num = setmetatable({}, {__index = function(t, k)
    local v = tonumber(k)
    t[k] = v
    return v
  end})

  -- seeding is whether quota budgets not held start from a seed, and
  -- seeds their seeds by budget number (read from argv below).
  local seeding, seeds = false, {}

  -- counts returns the counts of buckets from..to of a hash.
  local function counts(days, from, to)
    local names = {}
    for k = from, to do names[#names + 1] = k end
    if #names == 0 then return {} end
    local v = redis.call('HMGET', days, unpack(names))
    for j = 1, #v do v[j] = tonumber(v[j]) or 0 end
    return v
  end

  -- load reads budget p, cut in buckets of span, and drops the buckets
  -- that left the ring; its burst log only when logged.
  local function load(p, span, logged)
    local log, days = keys[ko + 2 * p - 1], keys[ko + 2 * p]
    local b = math.floor(now / span)
    local oldest = b - nb + 1
    local v = redis.call('HMGET', days, 't', 'lo', 'sp', b, 'la')
    local t, lo, cb = tonumber(v[1]) or 0, tonumber(v[2]) or b, tonumber(v[4]) or 0
    if t > 0 and tonumber(v[3]) ~= span then
      -- Cut in another span before: keep the count, in the bucket of the
      -- newest request counted (now's, if the hash predates 'la'), as
      -- Memory does; gone if that bucket has left the ring.
      local k = math.min(math.floor((tonumber(v[5]) or now) / span), b)
      redis.call('DEL', days)
      if k < oldest then
        t, cb = 0, 0
      else
        redis.call('HSET', days, 't', t, k, t, 'lo', k, 'sp', span, 'la', v[5] or string.format('%d', now))
        redis.call('PEXPIRE', days, math.floor(nb * span / 1000) + 1000)
        lo, cb = k, 0
        if k == b then cb = t end
      end
    elseif t > 0 and lo < oldest then
      -- Buckets left the ring: drop them and find the oldest left. (A
      -- hash older than twice the ring, which its expiry should have
      -- removed, is read whole rather than bucket by bucket.)
      local present = {}
      if b - lo > 2 * nb then
        local all = redis.call('HGETALL', days)
        for j = 1, #all, 2 do
          local k = tonumber(all[j])
          if k ~= nil then present[#present + 1] = {k, tonumber(all[j + 1])} end
        end
      else
        local c = counts(days, lo, b)
        for k = lo, b do
          if c[k - lo + 1] > 0 then present[#present + 1] = {k, c[k - lo + 1]} end
        end
      end
      local names, first = {}, nil
      for _, kc in ipairs(present) do
        if kc[1] < oldest then
          t = t - kc[2]
          names[#names + 1] = kc[1]
        elseif first == nil or kc[1] < first then
          first = kc[1]
        end
      end
      if #names > 0 then redis.call('HDEL', days, unpack(names)) end
      lo = first or b
      redis.call('HSET', days, 't', t, 'lo', lo)
    end
    if t == 0 then lo = b end
    -- A quota's budget not held (Redis lost it, or its period is new)
    -- starts from its seed; without one, its runs are not decided.
    local seeded, unseeded = false, false
    if seeding and not logged and v[1] == false then
      if seeds[p] == nil then
        unseeded = true
      else
        t, cb, lo, seeded = seeds[p], seeds[p], b, true
      end
    end
    local stored, last = 0, nil
    if logged then
      stored = redis.call('LLEN', log)
      if stored > 0 then last = tonumber(redis.call('LINDEX', log, -1)) end
    end
    -- The log stays in time order even if a clock goes back: a request is
    -- logged no earlier than the newest before it, so it leaves the
    -- window later, never sooner.
    local at = now
    if last ~= nil and last > now then at = last end
    return {log = log, days = days, span = span, logged = logged, b = b, t = t, lo = lo, cb = cb,
            stored = stored, dropped = 0, last = last, at = at, pushed = 0, added = 0, bw = 0,
            seeded = seeded, unseeded = unseeded}
  end

  -- flush writes budget s back.
  local function flush(s)
    if s.dropped > 0 then redis.call('LTRIM', s.log, s.dropped, -1) end
    if s.pushed > 0 then
      -- The batch's requests are logged at one time, written out once.
      local at, times = string.format('%d', s.at), {}
      for j = 1, s.pushed do times[j] = at end
      redis.call('RPUSH', s.log, unpack(times))
      redis.call('PEXPIRE', s.log, math.floor(s.bw / 1000) + 1000)
    end
    if s.added > 0 or s.seeded then
      -- A new field is a new bucket (or a new hash): the hash must then
      -- outlive it. A seeded hash is written even if nothing was added.
      if redis.call('HSET', s.days, 't', s.t, s.b, s.cb, 'lo', s.lo, 'sp', s.span, 'la', string.format('%d', s.at)) > 0 then
        redis.call('PEXPIRE', s.days, math.floor(nb * s.span / 1000) + 1000)
      end
    end
  end

  -- The budgets of the batch, by number, each read at its first use (and
  -- again after being written, should a request cut it in another span).
  local budgets = {}
  local function budget(p, span, logged)
    local s = budgets[p]
    if s == nil or s.span ~= span or s.logged ~= logged then
      if s ~= nil then flush(s) end
      s = load(p, span, logged)
      budgets[p] = s
    end
    return s
  end

  -- stored returns the k-th (from 0) logged time not yet dropped, read in
  -- chunks of s.size times (8 unless head guessed), each twice the last.
  local function stored(s, k)
    local i = s.dropped + k
    if s.chunk == nil or i < s.from or i >= s.from + #s.chunk then
      local size = s.size or 8
      s.size = math.min(size * 2, 256)
      s.from = i
      s.chunk = redis.call('LRANGE', s.log, i, i + size - 1)
    end
    return tonumber(s.chunk[i - s.from + 1])
  end

  -- head drops the logged requests that left a burst window of bw and
  -- returns the oldest time left among those logged before the batch.
  local function head(s, bw)
    local edge = now - bw
    if s.last ~= nil and s.last <= edge then s.dropped = s.stored end
    if s.size == nil and s.last ~= nil and now > s.last and bw > 0 then
      -- A log about a window long loses about as many times since its
      -- newest as it gained in as long: the first chunk read is that
      -- many, and a few more to find the first time left.
      s.size = math.min(math.floor(s.stored * (now - s.last) / bw) + 8, 128)
    end
    while s.dropped < s.stored do
      local x = stored(s, 0)
      if x > edge then return x end
      -- The chunk read holds times in order from the first to drop: the
      -- first left is found by halving, not by walking them one by one.
      local c, lo, hi = s.chunk, s.dropped - s.from + 2, #s.chunk
      if tonumber(c[hi]) <= edge then
        s.dropped = s.from + hi
      else
        while lo < hi do
          local mid = math.floor((lo + hi) / 2)
          if tonumber(c[mid]) > edge then hi = mid else lo = mid + 1 end
        end
        s.dropped = s.from + lo - 1
        return tonumber(c[lo])
      end
    end
    return nil
  end

  -- The batch's confirm fields, each confirmed once, and its limits.
  local i = ao + 3
  local confirmed, np = {}, tonumber(argv[i])
  for k = 1, np do
    confirmed[k] = confirm(argv[i + 2 * k - 1], argv[i + 2 * k])
  end
  i = i + 2 * np + 1
  local limits, nl = {}, tonumber(argv[i])
  for k = 1, nl do
    local a = i + 4 * k - 4
    limits[k] = {tonumber(argv[a + 1]), tonumber(argv[a + 2]), tonumber(argv[a + 3]), tonumber(argv[a + 4])}
  end
  i = i + 4 * nl + 1
  local ns = tonumber(argv[i])
  if ns >= 0 then
    seeding = true
    for k = 1, ns do
      local p, n = tonumber(argv[i + 2 * k - 1]), tonumber(argv[i + 2 * k])
      if seeds[p] == nil or n > seeds[p] then seeds[p] = n end
    end
    i = i + 2 * ns
  end
  i = i + 1

  local out, no = {}, 0
  -- A request's budgets and their oldest logged times, reused.
  local ss, heads = {}, {}
  local na = #argv
  -- The limits of a request's budgets, reused.
  local ls = {}

  -- request decides one request whose m budgets and their limits are
  -- argv[i+1 ..], counts it if admitted, and appends its values. It
  -- leaves the request's budgets in ss and their limits in ls.
  local function request(i, m)
    local room = true
    for j = 1, m do
      local l = limits[num[argv[i + 2 * j]]]
      ls[j] = l
      local bw, bl, span, dl = l[1], l[2], l[3], l[4]
      local s = budget(num[argv[i + 2 * j - 1]], span, bl < UNBOUNDED)
      ss[j] = s
      if s.logged then
        -- A lowered burst limit keeps only the newest requests, as
        -- Memory does: the oldest logged first, then the batch's own.
        local over = s.stored - s.dropped + s.pushed - math.max(bl, 1)
        if over > 0 then
          local old = math.min(over, s.stored - s.dropped)
          s.dropped, s.pushed = s.dropped + old, s.pushed - (over - old)
        end
        heads[j] = head(s, bw)
      else
        heads[j] = nil
      end
      if s.stored - s.dropped + s.pushed >= bl or s.t >= dl then room = false end
    end
    for j = 1, m do
      local s = ss[j]
      local l = ls[j]
      local bw, bl, dl = l[1], l[2], l[4]
      if room then
        s.added, s.t, s.cb = s.added + 1, s.t + 1, s.cb + 1
        if s.b < s.lo then s.lo = s.b end
        if s.logged then
          s.pushed = s.pushed + 1
          if bw > s.bw then s.bw = bw end
        end
      end
      local used = s.stored - s.dropped + s.pushed
      local oldest = heads[j]
      if oldest == nil and s.pushed > 0 then oldest = s.at end
      local burstReset, dailyReset, retry = 0, 0, 0
      if oldest ~= nil then burstReset = oldest + bw - now end
      if s.t > 0 then dailyReset = (s.lo + nb) * s.span - now end
      if not room then
        if used >= bl then
          -- The request that must leave is the (used-limit+1)-th oldest.
          local k, x = used - bl, s.at
          if k < s.stored - s.dropped then x = stored(s, k) end
          retry = x + bw - now
        end
        if s.t >= dl then
          local left, c = s.t, counts(s.days, s.lo, s.b)
          c[s.b - s.lo + 1] = s.cb
          for k = s.lo, s.b do
            left = left - c[k - s.lo + 1]
            if left < dl then
              retry = math.max(retry, (k + nb) * s.span - now)
              break
            end
          end
        end
      end
      out[no + 1], out[no + 2], out[no + 3], out[no + 4], out[no + 5] = used, s.t, burstReset, dailyReset, retry
      no = no + 5
    end
    return room
  end

  -- unseeded reports whether a budget of the run whose m budgets are
  -- argv[i+1 ..] is a quota's that is not held and has no seed.
  local function unseeded(i, m)
    local found = false
    for j = 1, m do
      local l = limits[num[argv[i + 2 * j]]]
      if budget(num[argv[i + 2 * j - 1]], l[3], l[2] < UNBOUNDED).unseeded then found = true end
    end
    return found
  end

  -- A run is n identical requests (their budgets all distinct), decided
  -- as n requests in turn would be: the first in full; as many after it
  -- as every budget has room for, counted at once (each would have found
  -- the same budgets one fuller, and answered the same values one
  -- higher); and the first refused in full, which every one after it
  -- repeats (a refusal changes nothing). Its answer is 0 when not
  -- confirmed, else a+1 for a admitted, the first request's values, and,
  -- when some were admitted and some refused, the first refused's.
  while i <= na do
    local n, m = num[argv[i]], num[argv[i + 2]]
    no = no + 1
    if not confirmed[num[argv[i + 1]]] then
      out[no] = 0
    elseif seeding and unseeded(i + 2, m) then
      out[no] = -1
    else
      local at, a = no, 0
      if request(i + 2, m) then
        a = 1
        local more = n - 1
        for j = 1, m do
          local s, l = ss[j], ls[j]
          if s.logged then more = math.min(more, l[2] - (s.stored - s.dropped + s.pushed)) end
          more = math.min(more, l[4] - s.t)
        end
        if more > 0 then
          for j = 1, m do
            local s = ss[j]
            s.added, s.t, s.cb = s.added + more, s.t + more, s.cb + more
            if s.logged then s.pushed = s.pushed + more end
          end
          a = a + more
        end
        if a < n then request(i + 2, m) end
      end
      out[at] = a + 1
    end
    i = i + 3 + 2 * m
  end
  for _, s in pairs(budgets) do flush(s) end
  return out
end
