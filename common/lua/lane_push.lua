#!lua flags=allow-oom
-- Add jobs to ONE endpoint's lanes (docs/policies.md "How: lanes"). Fanout calls it once
-- per endpoint per events batch, before fanout.lua acknowledges the events; the results
-- stage calls it for jobs adopted from the shared jobs stream, before their XACK.
-- KEYS[1] P:{ep}:endpoint, KEYS[2] P:{ep}:lanekeys, KEYS[3] P:{ep}:ready,
-- KEYS[4] P:{ep}:state, KEYS[5] P:{ep}:tries
-- ARGV[1] the lanes' key prefix "P:{ep}:lane:" (a lane is that + its order key, on the
-- same slot), ARGV[2] "f" (fanout) | "a" (adoption), ARGV[3..] per job: lane id (the
-- padded events stream id), order key, attempt (1-based, the attempt it makes next).
-- Returns {added, dropped, status}: status 0 added (jobs already in their lane are not
-- added twice: a replayed fanout is a no-op), 1 the endpoint no longer exists (nothing
-- written), 2 disabled without hold (nothing added, counted in state dropped_disabled).
-- An ordered key's fanout push at or below last:<key> (the last lane id done for that
-- key) is a replay of an event already delivered past, and is ignored: putting it back
-- would deliver an old event after newer ones. Adoption ("a") pushes are jobs that were
-- on the shared stream before the endpoint got its policy and are always added.
-- A disabled endpoint with on_disabled hold keeps at most hold_max jobs (default
-- 100000) in its lanes; the rest are counted in state `dropped`.
-- One hash slot: every key, the lanes included, carries the endpoint's tag.
local e = redis.call('HMGET', KEYS[1], 'enabled', 'on_disabled', 'hold_max', 'ordered')
if not e[1] then
    return {0, 0, 1}
end
local nargs = #ARGV - 2
if nargs < 3 or nargs % 3 ~= 0 or (ARGV[2] ~= 'f' and ARGV[2] ~= 'a') then
    return redis.error_reply('ERR lane_push.lua: bad argument list')
end
local njobs = nargs / 3
if e[1] ~= 'true' and e[2] ~= 'hold' then
    redis.call('HINCRBY', KEYS[4], 'dropped_disabled', njobs)
    return {0, njobs, 2}
end
local cap
if e[1] ~= 'true' then
    cap = tonumber(e[3]) or 100000
    if cap <= 0 then
        cap = 100000
    end
end
local ordered = e[4] == 'true'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = tonumber(redis.call('HGET', KEYS[4], 'n') or '0') or 0
local added, dropped = 0, 0
for i = 3, #ARGV, 3 do
    local id, key, att = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]) or 1
    local skip = false
    if ordered and ARGV[2] == 'f' then
        local last = redis.call('HGET', KEYS[4], 'last:' .. key)
        if last and id <= last then
            skip = true
        end
    end
    if not skip and redis.call('ZSCORE', ARGV[1] .. key, id) then
        skip = true -- in its lane already: a replay, nothing to add or drop
    end
    if not skip then
        if cap and held >= cap then
            dropped = dropped + 1
        elseif redis.call('ZADD', ARGV[1] .. key, 'NX', 0, id) == 1 then
            held = held + 1
            added = added + 1
            if att > 1 then
                redis.call('HSET', KEYS[5], id, att - 1)
            end
            redis.call('SADD', KEYS[2], key)
            if not ordered then
                redis.call('ZADD', KEYS[3], 'LT', now, key) -- ready now, whatever waits
            elseif redis.call('HEXISTS', KEYS[4], 'h:' .. key) == 0 then
                redis.call('ZADD', KEYS[3], 'NX', now, key) -- a head's retry time stays
            end
        end
    end
end
if added > 0 then
    redis.call('HINCRBY', KEYS[4], 'n', added)
end
if dropped > 0 then
    redis.call('HINCRBY', KEYS[4], 'dropped', dropped)
end
return {added, dropped, 0}
