#!lua flags=allow-oom
-- A 429 or 503 with Retry-After from an endpoint WITHOUT lanes: pause it for every
-- worker (docs/policies.md "Fleet-wide rate and max in flight"). The endpoint moves onto
-- its lanes while paused_until is ahead (ep_uses_lanes), so every worker's new jobs for
-- it wait there; lane_claim.lua releases them when state pause has passed.
-- KEYS[1] P:{ep}:endpoint, KEYS[2] P:{ep}:state; ARGV[1] pause until (unix ms).
-- Returns 1 if this call moved the pause later by at least a second (the caller then
-- bumps the endpoints version so every worker reloads), else 0; 0 also for an endpoint
-- that no longer exists (nothing written). One hash slot.
local till = tonumber(ARGV[1])
if not till then
    return redis.error_reply('ERR pause.lua: bad argument list')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0') or 0
local st = tonumber(redis.call('HGET', KEYS[2], 'pause') or '0') or 0
if till > st then
    redis.call('HSET', KEYS[2], 'pause', till)
end
if till < cur + 1000 then
    return 0
end
redis.call('HSET', KEYS[1], 'paused_until', till, 'lanes', 'true')
return 1
