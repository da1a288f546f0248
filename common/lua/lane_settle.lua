#!lua flags=allow-oom
-- Settle finished lane jobs of ONE endpoint (docs/policies.md), one call per endpoint
-- per results round, after the writes that must come first (a dead letter, a retry in
-- the shared delay zset) are in the same pipeline ahead of it.
-- KEYS[1] P:{ep}:endpoint, KEYS[2] P:{ep}:lanekeys, KEYS[3] P:{ep}:ready,
-- KEYS[4] P:{ep}:leases, KEYS[5] P:{ep}:state, KEYS[6] P:{ep}:tries
-- ARGV[1] the lanes' key prefix, ARGV[2] pause until (unix ms; 0 = none): a 429/503
-- with Retry-After, for every worker; ARGV[3..] per job: its lease member, action,
-- due (unix ms), attempts made so far. Actions:
--   d  done (delivered, dead-lettered, dropped): an ordered key's next head is ready
--   r  an ordered head to retry at due: back at the head of its lane, the key ready at
--      due, the jobs behind it waiting
--   q  an unordered retry, handed to the shared delay zset: only the lease goes
--   b  back, not attempted (the worker could not send it): in its lane again, ready at
--      due (an unordered one waits with due as its score in the lane, see lane_claim.lua)
-- Returns {more, r1, r2, ...}: more = 1 if the endpoint's lanes still hold jobs (claim
-- again), ri = 1 settled, 0 its lease was no longer this worker's (it expired and was
-- taken back: whoever holds it now decides; nothing written for it).
-- A job done for an ordered key moves last:<key> up to its lane id (lane_push.lua
-- ignores a replayed fanout at or below it).
local pre = ARGV[1]
local pause = tonumber(ARGV[2])
if not pause or (#ARGV - 2) % 4 ~= 0 then
    return redis.error_reply('ERR lane_settle.lua: bad argument list')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if pause > now then
    local cur = tonumber(redis.call('HGET', KEYS[5], 'pause') or '0') or 0
    if pause > cur then
        redis.call('HSET', KEYS[5], 'pause', pause)
    end
end
local probe_m = redis.call('HGET', KEYS[5], 'probe')
local out = {0}
local back = 0
for i = 3, #ARGV, 4 do
    local m, act, due, att = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]) or now, ARGV[i + 3]
    if redis.call('ZREM', KEYS[4], m) == 0 then
        out[#out + 1] = 0
    else
        local id, key = string.match(m, '^([^\t]*)\t(.*)\t[^\t]*$')
        if probe_m and m == probe_m then
            redis.call('HDEL', KEYS[5], 'probe')
        end
        local lane = pre .. (key or '')
        local held = redis.call('HDEL', KEYS[5], 'h:' .. (key or '')) == 1
        if not id then
            out[#out + 1] = 1
        elseif act == 'd' or act == 'q' then
            redis.call('HDEL', KEYS[6], id)
            if held then
                local last = redis.call('HGET', KEYS[5], 'last:' .. key)
                if not last or id > last then
                    redis.call('HSET', KEYS[5], 'last:' .. key, id)
                end
                if redis.call('EXISTS', lane) == 1 then
                    redis.call('ZADD', KEYS[3], 'NX', now, key)
                else
                    redis.call('SREM', KEYS[2], key)
                end
            end
            out[#out + 1] = 1
        elseif act == 'r' or act == 'b' then
            -- an ordered head goes back as the head (score 0, its key ready at due); an
            -- unordered job waits in its lane with its due time as score
            if redis.call('ZADD', lane, 'NX', held and 0 or due, id) == 1 then
                back = back + 1
            end
            if tonumber(att) and tonumber(att) > 0 then
                redis.call('HSET', KEYS[6], id, att)
            end
            redis.call('SADD', KEYS[2], key)
            if held then
                redis.call('ZADD', KEYS[3], due, key)
            else
                redis.call('ZADD', KEYS[3], 'LT', due, key)
            end
            out[#out + 1] = 1
        else
            return redis.error_reply('ERR lane_settle.lua: bad action ' .. act)
        end
    end
end
if back > 0 then
    redis.call('HINCRBY', KEYS[5], 'n', back)
end
if (tonumber(redis.call('HGET', KEYS[5], 'n') or '0') or 0) > 0 then
    out[1] = 1
end
return out
