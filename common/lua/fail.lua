#!lua flags=allow-oom
-- Count one failed attempt for an endpoint and disable it when it must be.
-- KEYS[1] P:{ep}:failures, KEYS[2] P:{ep}:endpoint
-- ARGV[1] disable_after (0 = never), ARGV[2] now (ISO), ARGV[3] disable reason,
-- ARGV[4] "1" to disable now regardless of the count (410 Gone)
-- Returns {consecutive failures, 1 if this call disabled the endpoint else 0}.
-- INCR is atomic, so among any number of racing workers exactly one sees the
-- threshold and disables: the endpoint is disabled at exactly disable_after.
-- allow-oom (Redis >= 7.0): a counter and a few hash fields, so failures are still
-- counted and endpoints still disabled while Redis is at maxmemory.
local n = redis.call('INCR', KEYS[1])
local limit = tonumber(ARGV[1])
if redis.call('HGET', KEYS[2], 'enabled') ~= 'true' then
    return {n, 0}
end
if ARGV[4] == '1' or (limit > 0 and n == limit) then
    redis.call('HSET', KEYS[2], 'enabled', 'false', 'disabled_at', ARGV[2],
               'disabled_reason', ARGV[3], 'updated_at', ARGV[2])
    return {n, 1}
end
return {n, 0}
