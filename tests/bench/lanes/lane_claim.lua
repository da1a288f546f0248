-- Spike (layout B, "lanes"): claim up to ARGV[2] jobs from one partition's ready lanes.
-- KEYS[1] P:{qN}:ready, KEYS[2] P:{qN}:leases (zset: "<member> <job id>" -> lease
-- expiry ms; the reaper gives expired ones back to the head of their lane),
-- KEYS[3] P:{qN}:policy (hash: member -> "o=1 r=<per s> b=<burst> m=<max in flight>",
-- absent = no policy), KEYS[4] P:{qN}:state (see lane_fanout.lua).
-- ARGV[1] lane key prefix "P:{qN}:lane:", ARGV[2] quota, ARGV[3] k = most jobs from one
-- lane per call, ARGV[4] lease ms.
-- Lanes are taken in ready-score order (the one waiting longest first). Per lane:
--   ordered: 1 job (the head), the lane leaves the ready set until its ack;
--   m (max in flight, fleet-wide): at most m - "<ep>:n" jobs, the count goes up;
--   r, b (GCRA): at most as many as the bucket allows now; TAT kept in the state hash;
-- a lane that is left non-empty goes back in the ready set at "now" (behind the ones
-- waiting longer: round-robin) or, when a limit stopped it, at the time it may send next;
-- a lane found empty leaves the ready set (the next append makes it ready).
-- Keys named inside the script (the lanes) carry the same {qN} tag as KEYS: one slot.
-- Returns {member, n, job ids..., member, n, ...} and, last, the earliest ready score left
-- (ms) or -1, so an idle worker knows when to come back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pre, quota, k, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, quota)
local out, leases, zrem, zadd, hinc = {}, {}, {}, {}, {}
local got = 0
for x = 1, #ready do
    if got >= quota then break end
    local m = ready[x]
    local want = math.min(k, quota - got)
    local pol = redis.call('HGET', KEYS[3], m)
    local ordered, mif, rate, burst, ep = false, nil, nil, nil, m
    local next_at = nil
    if pol then
        ordered = string.find(pol, 'o=1', 1, true) ~= nil
        mif = tonumber(string.match(pol, 'm=(%d+)'))
        rate = tonumber(string.match(pol, 'r=([%d.]+)'))
        burst = tonumber(string.match(pol, 'b=(%d+)')) or 1
        ep = string.match(pol, 'e=(%S+)') or m -- sublanes share their endpoint's limits
        if ordered then want = 1 end
        if mif then
            local n = tonumber(redis.call('HGET', KEYS[4], ep .. ':n') or '0')
            want = math.min(want, mif - n)
            if want <= 0 then next_at = now + 1 end -- woken by an ack before that
        end
        if rate and want > 0 then
            local T = 1000 / rate
            local tat = math.max(tonumber(redis.call('HGET', KEYS[4], ep .. ':tat') or '0'), now)
            local allow = math.floor((now + T * burst - tat) / T)
            if allow < want then want = math.max(allow, 0) end
            if want == 0 then next_at = tat + T - T * burst end
            rate = {T = T, tat = tat}
        end
    end
    local jobs = false
    if want > 0 then jobs = redis.call('LPOP', pre .. m, want) end
    local n = jobs and #jobs or 0
    if n > 0 then
        out[#out + 1] = m
        out[#out + 1] = n
        for j = 1, n do
            out[#out + 1] = jobs[j]
            leases[#leases + 1] = now + lease
            leases[#leases + 1] = m .. ' ' .. jobs[j]
        end
        got = got + n
        if mif then hinc[#hinc + 1] = ep end
        if type(rate) == 'table' then
            rate.tat = rate.tat + n * rate.T
            redis.call('HSET', KEYS[4], ep .. ':tat', rate.tat)
            if n == want then next_at = math.max(now, rate.tat - rate.T * burst) end
        end
        if mif then redis.call('HINCRBY', KEYS[4], ep .. ':n', n) end
    end
    if ordered and n > 0 then
        redis.call('HSET', KEYS[4], m .. ':h', 1)
        zrem[#zrem + 1] = m
    elseif want > 0 and n < want then
        zrem[#zrem + 1] = m -- found empty
    else
        zadd[#zadd + 1] = next_at or now
        zadd[#zadd + 1] = m
    end
end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
if #zrem > 0 then redis.call('ZREM', KEYS[1], unpack(zrem)) end
if #zadd > 0 then redis.call('ZADD', KEYS[1], unpack(zadd)) end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[#out + 1] = first[2] or -1
return out
