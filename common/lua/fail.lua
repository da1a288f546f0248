#!lua flags=allow-oom
-- Count one failed attempt for an endpoint and disable it when it must be, telling every
-- worker in the same script.
-- KEYS[1] P:{ep}:failures, KEYS[2] P:{ep}:endpoint, KEYS[3] P:{q}:endpoints:version,
-- KEYS[4] P:{q}:events
-- ARGV[1] disable_after (0 = never), ARGV[2] now (ISO), ARGV[3] disable reason,
-- ARGV[4] "1" to disable now regardless of the count (410 Gone), ARGV[5] endpoint id,
-- ARGV[6] now (unix ms), ARGV[7] short reason for the endpoint.disabled event
-- Returns {consecutive failures, status}: 0 counted, 1 this call disabled the endpoint,
-- 2 it was disabled already (nothing counted), 3 the endpoint no longer exists (nothing
-- written: a removed endpoint's keys must not come back).
-- The threshold is ">=": an operator who lowers disable_after below the current count
-- still gets the endpoint disabled at the next failure. INCR is atomic and the check
-- of `enabled` comes first, so among racing workers exactly one disables.
-- The version bump and the endpoint.disabled event are written here, atomically with
-- the disable, and allow-oom lets them through at maxmemory: a disable that reached the
-- hash always reaches every worker (each also learns it from status 2 on its next
-- failure for that endpoint, within one round trip).
local enabled = redis.call('HGET', KEYS[2], 'enabled')
if not enabled then
    return {0, 3}
end
if enabled ~= 'true' then
    return {tonumber(redis.call('GET', KEYS[1]) or '0') or 0, 2}
end
local n = redis.call('INCR', KEYS[1])
local limit = tonumber(ARGV[1])
if ARGV[4] == '1' or (limit > 0 and n >= limit) then
    redis.call('HSET', KEYS[2], 'enabled', 'false', 'disabled_at', ARGV[2],
               'disabled_reason', ARGV[3], 'updated_at', ARGV[2])
    redis.call('INCR', KEYS[3])
    local data = cjson.encode({endpoint_id = ARGV[5], reason = ARGV[7], failures = n})
    redis.call('XADD', KEYS[4], '*', 'type', 'endpoint.disabled', 'ts', ARGV[6], 'data', data)
    return {n, 1}
end
return {n, 0}
