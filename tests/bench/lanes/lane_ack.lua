-- Spike (layout B, "lanes"): settle delivered jobs of one partition.
-- KEYS[1] P:{qN}:ready, KEYS[2] P:{qN}:leases, KEYS[3] P:{qN}:state,
-- KEYS[4] P:{qN}:policy.
-- ARGV[1] lane key prefix, ARGV[2] n groups, then per group: member, flags ("-" none,
-- "o" ordered, "m" counted against max in flight, "om" both), endpoint (for "m"),
-- n, lease members ("<member> <job id>").
-- Removes the leases (only leases still there count: one the reaper took back is not
-- ours any more), lowers the in-flight count, and makes an ordered lane ready again if
-- its lane is not empty. Returns how many leases were removed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pre, ng = ARGV[1], tonumber(ARGV[2])
local i = 3
local all, zadd = {}, {}
local removed = 0
for _ = 1, ng do
    local m, fl, ep, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    local r = redis.call('ZREM', KEYS[2], unpack(ARGV, i + 4, i + 3 + n))
    removed = removed + r
    if string.find(fl, 'm', 1, true) and r > 0 then
        redis.call('HINCRBY', KEYS[3], ep .. ':n', -r)
    end
    if string.find(fl, 'o', 1, true) then
        redis.call('HDEL', KEYS[3], m .. ':h')
        if redis.call('LLEN', pre .. m) > 0 then
            zadd[#zadd + 1] = now
            zadd[#zadd + 1] = m
        end
    end
    i = i + 4 + n
end
if #zadd > 0 then redis.call('ZADD', KEYS[1], 'NX', unpack(zadd)) end
return removed
