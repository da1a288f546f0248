#!lua flags=allow-oom
-- Apply one batch of attempt outcomes of ONE endpoint, in completion order, to its
-- consecutive-failure counter, and disable the endpoint when it must be, telling every
-- worker in the same script. The worker calls it once per endpoint per results batch
-- (in chunks of at most 100 outcomes, in order) instead of once per failed attempt.
-- KEYS[1] P:{ep}:failures, KEYS[2] P:{ep}:endpoint, KEYS[3] P:{q}:endpoints:version,
-- KEYS[4] P:{q}:events
-- ARGV[1] disable_after (0 = never), ARGV[2] now (ISO), ARGV[3] endpoint id,
-- ARGV[4] now (unix ms), ARGV[5..] the outcomes in completion order, one per argument:
--   "s"        a delivered attempt: the counter starts again from 0
--   "f<error>" a failed attempt: counts one; <error> goes into the disable reason
--   "g"        410 Gone: counts one and disables at once
-- Returns {failures, status, position}: status 0 counted (failures = the counter now),
-- 1 this call disabled the endpoint (failures = the count at the disable, position =
-- the 1-based index among ARGV[5..] of the outcome that did it), 2 it was disabled
-- already (nothing counted), 3 the endpoint no longer exists (nothing written: a removed
-- endpoint's keys must not come back). position is 0 unless status is 1.
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
-- Hash slots: KEYS[1..2] share the endpoint's tag, KEYS[3..4] are the queue's ({q}); one
-- call touches those two slots, as it did per attempt (Redis Cluster is not supported
-- yet, docs/worker.md "Known limits").
local limit = tonumber(ARGV[1])
local first = 5
local nout = #ARGV - first + 1
if not limit or nout < 1 then
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
local enabled = redis.call('HGET', KEYS[2], 'enabled')
if not enabled then
    return {0, 3, 0}
end
if enabled ~= 'true' then
    if has_s then
        redis.call('DEL', KEYS[1])
        return {0, 2, 0}
    end
    return {tonumber(redis.call('GET', KEYS[1]) or '0') or 0, 2, 0}
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
    redis.call('INCR', KEYS[3])
    local data = cjson.encode({endpoint_id = ARGV[3], reason = short, failures = at_n})
    redis.call('XADD', KEYS[4], '*', 'type', 'endpoint.disabled', 'ts', ARGV[4], 'data', data)
    return {at_n, 1, at}
end
return {n, 0, 0}
