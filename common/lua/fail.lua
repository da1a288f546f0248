#!lua flags=allow-oom
-- Apply one batch of attempt outcomes of ONE endpoint, in completion order, to its
-- consecutive-failure counter and to its circuit breaker, and disable the endpoint when
-- it must be, telling every worker in the same script. The worker calls it once per
-- endpoint per results batch (in chunks of at most 100 outcomes, in order) instead of
-- once per failed attempt.
-- KEYS[1] P:{ep}:failures, KEYS[2] P:{ep}:endpoint, KEYS[3] P:{q}:endpoints:version,
-- KEYS[4] P:{q}:events, KEYS[5] P:{ep}:health
-- ARGV[1] disable_after (0 = never), ARGV[2] now (ISO), ARGV[3] endpoint id,
-- ARGV[4] now (unix ms), ARGV[5] breaker.window ms (0 = breaker.enabled false),
-- ARGV[6] breaker.min_attempts, ARGV[7] breaker.failure_ratio, ARGV[8] breaker.cooldown
-- ms, ARGV[9] breaker.max_cooldown ms, ARGV[10..] the outcomes in completion order, one
-- per argument:
--   "s"        a delivered attempt: the counter starts again from 0
--   "f<error>" a failed attempt: counts one; <error> goes into the disable reason
--   "g"        410 Gone: counts one and disables at once
-- Returns {failures, status, position, breaker, until, window_f, window_n}: status 0
-- counted (failures = the counter now), 1 this call disabled the endpoint (failures =
-- the count at the disable, position = the 1-based index among ARGV[10..] of the outcome
-- that did it), 2 it was disabled already (nothing counted, nothing of the breaker
-- touched), 3 the endpoint no longer exists (nothing written: a removed endpoint's keys
-- must not come back). position is 0 unless status is 1. breaker is the last breaker
-- transition of the call: 0 none, 1 opened, 2 closed, 3 re-opened (a failed probe);
-- until = breaker_until after it (0 unless 1 or 3); window_f/window_n = the failed
-- attempts / attempts of the window that opened it (0 unless 1).
--
-- The outcomes are applied exactly as if each had been its own call, in order: a
-- failure after the disable counts nothing (as for an endpoint disabled already) and a
-- success after it still resets the counter (it always did: a success deleted the
-- counter whatever the endpoint's state). So "f s f" ends at 1, and n failures that
-- cross the threshold disable once, at exactly the threshold, with the rest not counted.
-- The counter is written once: INCRBY n when the batch has no success (the counter
-- before it is the result minus n), else GET (only if the batch starts with a failure)
-- and one SET, or DEL when it ends at 0.
-- The threshold is ">=": an operator who lowers disable_after below the current count
-- still gets the endpoint disabled at the next failure. The check of `enabled` comes
-- first and the script is atomic, so among racing workers exactly one disables.
-- The version bump and the endpoint.disabled event are written here, atomically with
-- the disable, and allow-oom lets them through at maxmemory: a disable that reached the
-- hash always reaches every worker (each also learns it from status 2 on its next
-- failure for that endpoint, within one round trip).
--
-- The circuit breaker (docs/policies.md "Circuit breaker"): the endpoint hash's
-- `breaker` (open | half_open; absent = closed) and the window in KEYS[5] (since ms,
-- n attempts, f failures, opens). Per outcome, in order, all at ARGV[4]:
--   closed:    a window older than breaker.window starts again (n = f = 0, since = now);
--              n + 1, f + 1 for a failure; when n >= min_attempts and f / n >= ratio it
--              opens: breaker=open, breaker_until = now + cooldown, breaker_opened_at =
--              now, lanes=true (the jobs wait in the lanes: lane_claim.lua), opens = 1,
--              endpoint.failing {endpoint_id, failures, attempts, until}.
--   half_open: (lane_claim.lua handed out the probe) a success closes: the breaker
--              fields are removed, opens = 0, a new window starts with this success,
--              endpoint.recovered {endpoint_id, opened_at, opens}; a failure re-opens:
--              breaker_until = now + min(cooldown * 2^opens, max_cooldown), opens + 1,
--              no new event (endpoint.failing was published at the first open and
--              endpoint.recovered has not been since).
--   open:      an attempt that was in flight when it opened: nothing.
-- Every transition INCRs the version (workers reload: ep_uses_lanes changes). Health is
-- written once per call, with PEXPIRE 2 * window while closed (an idle healthy endpoint
-- leaves nothing behind) and without expiry while not (opens must outlast any cooldown).
-- A disable wins: in a call that disables, the breaker does not open; its fields and
-- the window are removed instead, so `endpoint enable` starts closed with a new window.
-- With ARGV[5] = 0 (breaker.enabled false) no window is kept; a breaker left open or
-- half_open by earlier settings closes at the first outcome (endpoint.recovered).
-- Hash slots: KEYS[1..2] and KEYS[5] share the endpoint's tag, KEYS[3..4] are the
-- queue's ({q}); one call touches those two slots, as it did per attempt (Redis Cluster
-- is not supported yet, docs/worker.md "Known limits").
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[4])
local window, min_n, ratio = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local cooldown, max_cooldown = tonumber(ARGV[8]), tonumber(ARGV[9])
local first = 10
local nout = #ARGV - first + 1
if not limit or not now or not window or not min_n or not ratio or not cooldown or
    not max_cooldown or nout < 1 then
    return redis.error_reply('ERR fail.lua: bad argument list')
end
local has_s = false
for i = first, #ARGV do
    local c = string.sub(ARGV[i], 1, 1)
    if c == 's' then
        has_s = true
    elseif c ~= 'f' and c ~= 'g' then
        return redis.error_reply('ERR fail.lua: bad outcome ' .. ARGV[i])
    end
end
local hs = redis.call('HMGET', KEYS[2], 'enabled', 'breaker', 'breaker_opened_at')
local enabled, brk, opened_at = hs[1], hs[2] or 'closed', hs[3] or ''
if not enabled then
    return {0, 3, 0, 0, 0, 0, 0}
end
if enabled ~= 'true' then
    if has_s then
        redis.call('DEL', KEYS[1])
        return {0, 2, 0, 0, 0, 0, 0}
    end
    return {tonumber(redis.call('GET', KEYS[1]) or '0') or 0, 2, 0, 0, 0, 0, 0}
end
local n -- the count before the first outcome
if not has_s then
    n = redis.call('INCRBY', KEYS[1], nout) - nout
elseif string.sub(ARGV[first], 1, 1) == 's' then
    n = 0
else
    local cur = redis.call('GET', KEYS[1])
    n = 0
    if cur then
        n = tonumber(cur)
        if not n then
            return redis.error_reply('ERR fail.lua: ' .. KEYS[1] .. ' is not an integer')
        end
    end
end
local at, at_n, reason, short = 0, 0, nil, nil
for i = first, #ARGV do
    local c = string.sub(ARGV[i], 1, 1)
    if c == 's' then
        n = 0
    elseif at == 0 then
        n = n + 1
        if c == 'g' then
            at, at_n, reason, short = i - first + 1, n, '410 Gone', '410 Gone'
        elseif limit > 0 and n >= limit then
            at, at_n, short = i - first + 1, n, 'consecutive failures'
            reason = string.format('%d consecutive failed attempts (last: %s)', limit,
                                   string.sub(ARGV[i], 2))
        end
    end
end
if not has_s then
    if at ~= 0 and at < nout then
        redis.call('SET', KEYS[1], n) -- INCRBY counted the failures after the disable
    end
elseif n == 0 then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], n)
end
if at ~= 0 then
    redis.call('HSET', KEYS[2], 'enabled', 'false', 'disabled_at', ARGV[2], 'disabled_reason',
               reason, 'updated_at', ARGV[2])
    if brk ~= 'closed' then
        redis.call('HDEL', KEYS[2], 'breaker', 'breaker_until', 'breaker_opened_at')
    end
    redis.call('DEL', KEYS[5])
    redis.call('INCR', KEYS[3])
    local data = cjson.encode({endpoint_id = ARGV[3], reason = short, failures = at_n})
    redis.call('XADD', KEYS[4], '*', 'type', 'endpoint.disabled', 'ts', ARGV[4], 'data', data)
    return {at_n, 1, at, 0, 0, 0, 0}
end

-- The breaker (header). Nothing to do while it is off and closed: no read, no write.
if window <= 0 and brk == 'closed' then
    return {n, 0, 0, 0, 0, 0, 0}
end
local function publish(kind, fields)
    redis.call('XADD', KEYS[4], '*', 'type', kind, 'ts', ARGV[4], 'data', cjson.encode(fields))
end
local function recovered(opens)
    redis.call('HDEL', KEYS[2], 'breaker', 'breaker_until', 'breaker_opened_at')
    publish('endpoint.recovered', {endpoint_id = ARGV[3], opened_at = opened_at, opens = opens})
end
if window <= 0 then
    recovered(tonumber(redis.call('HGET', KEYS[5], 'opens') or '0') or 0)
    redis.call('DEL', KEYS[5])
    redis.call('INCR', KEYS[3])
    return {n, 0, 0, 2, 0, 0, 0}
end
local h = redis.call('HMGET', KEYS[5], 'since', 'n', 'f', 'opens')
local since, wn, wf = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
local opens = tonumber(h[4]) or 0
local state, trans, until_ms, open_f, open_n = brk, 0, 0, 0, 0
local opened_here = false
if state ~= 'open' and state ~= 'half_open' then
    state = 'closed'
end
for i = first, #ARGV do
    local ok = string.sub(ARGV[i], 1, 1) == 's'
    if state == 'half_open' then
        if ok then
            recovered(opens)
            state, trans, until_ms, opens = 'closed', 2, 0, 0
            since, wn, wf = now, 0, 0
        else
            until_ms = now + math.min(cooldown * 2 ^ opens, max_cooldown)
            state, trans, opens = 'open', 3, opens + 1
        end
    end
    if state == 'closed' then
        if not since or now - since > window then
            since, wn, wf = now, 0, 0
        end
        wn = wn + 1
        if not ok then
            wf = wf + 1
        end
        if wn >= min_n and wf / wn >= ratio then
            until_ms = now + cooldown
            state, trans, opens, open_f, open_n = 'open', 1, 1, wf, wn
            opened_here = true
            publish('endpoint.failing', {endpoint_id = ARGV[3], failures = wf, attempts = wn,
                                         ['until'] = until_ms})
        end
    end
end
if state == 'open' and trans ~= 0 then
    redis.call('HSET', KEYS[2], 'breaker', 'open', 'breaker_until', until_ms)
    if opened_here then
        redis.call('HSET', KEYS[2], 'breaker_opened_at', ARGV[2], 'lanes', 'true')
    end
end
if trans ~= 0 then
    redis.call('INCR', KEYS[3])
end
if state ~= 'open' or trans ~= 0 then
    -- open and no transition: only stragglers, the window is not theirs to change
    redis.call('HSET', KEYS[5], 'since', since or now, 'n', wn, 'f', wf, 'opens', opens)
    if state == 'closed' then
        redis.call('PEXPIRE', KEYS[5], 2 * window)
    else
        redis.call('PERSIST', KEYS[5])
    end
end
return {n, 0, 0, trans, until_ms, open_f, open_n}
