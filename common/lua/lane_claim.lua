#!lua
-- Claim jobs from ONE endpoint's lanes, every policy applied at once (docs/policies.md).
-- KEYS[1] P:{ep}:endpoint, KEYS[2] P:{ep}:lanekeys, KEYS[3] P:{ep}:ready,
-- KEYS[4] P:{ep}:leases, KEYS[5] P:{ep}:state, KEYS[6] P:{ep}:tries
-- ARGV[1] the lanes' key prefix "P:{ep}:lane:", ARGV[2] this worker, ARGV[3] jobs wanted
-- (>= 1), ARGV[4] lease ms, ARGV[5] watermark: the highest lane id an ordered head may
-- have (inclusive; "" = none may go), ARGV[6] the lowest lane id still being fanned out
-- (exclusive; "" = none), ARGV[7] max reaped per call.
-- Returns {status, wait, reaped, then per job: lane id, order key, attempt (the one to
-- make now, 1-based), jobs waiting behind it in its lane, the lane id right behind it
-- or ""}. status: 0 claimed (maybe nothing: empty), 1 the endpoint no longer exists,
-- 2 disabled, 3 breaker open (cooling down, or its probe is out), 4 paused by a
-- Retry-After, 5 at max_in_flight, 6 rate limit, 7 ordered heads wait for the
-- watermark. wait: ms from now until a claim may get more (-1: nothing is waiting that
-- a claim could take: come back when told, or poll slowly).
--
-- Leases: "<lane id>\t<order key>\t<worker>" -> expiry, like the pending list of the
-- jobs stream (split at the first and the last tab: an order key may hold tabs, a lane
-- id and a worker name do not). Expired ones are taken back first (any worker's): the lane id returns to
-- its lane (for an ordered key: its head again) and the key to `ready`.
-- Ordered: a key gives its head, once the head is covered by the watermark, and leaves
-- `ready` (state h:<key>) until lane_settle.lua is told the head is done or to retry.
-- Unordered: a key gives up to what is left of the request, of the jobs due: a lane
-- member's score is 0, or the time a job handed back unattempted may go again (its
-- key's ready score is the earliest of them). Keys are taken oldest ready first
-- (round-robin: a key that just gave goes back in at now; so does an ordered key whose
-- head waits for the watermark, so the keys behind it get their turn).
-- Rate: GCRA, emission interval T = window / n, burst = the attempts of 100 ms (>= 1);
-- the grant is the whole batch, tat advanced by what was taken.
-- Breaker: open and before breaker_until: nothing; after it: exactly one probe (the
-- endpoint turns half_open, state probe = its lease); half_open with the probe's lease
-- alive: nothing. A probe whose lease expires (its worker died) turns the breaker back
-- to open, due now, so another probe goes.
local pre, me = ARGV[1], ARGV[2]
local want = tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[4])
local wm, fanning = ARGV[5], ARGV[6]
local reap_max = tonumber(ARGV[7]) or 1000
if not want or want < 1 or not lease_ms then
    return redis.error_reply('ERR lane_claim.lua: bad argument list')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local e = redis.call('HMGET', KEYS[1], 'enabled', 'ordered', 'rate', 'max_in_flight', 'breaker',
                     'breaker_until')
local reaped = 0
local probe_m = redis.call('HGET', KEYS[5], 'probe')
local exp = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, reap_max)
for _, m in ipairs(exp) do
    redis.call('ZREM', KEYS[4], m)
    local id, key = string.match(m, '^([^\t]*)\t(.*)\t[^\t]*$')
    if id then
        if redis.call('ZADD', pre .. key, 'NX', 0, id) == 1 then
            redis.call('HINCRBY', KEYS[5], 'n', 1)
        end
        redis.call('SADD', KEYS[2], key)
        redis.call('HDEL', KEYS[5], 'h:' .. key)
        redis.call('ZADD', KEYS[3], 'LT', now, key)
        reaped = reaped + 1
    end
    if probe_m and m == probe_m then
        redis.call('HDEL', KEYS[5], 'probe')
        probe_m = nil
        if e[1] and e[5] == 'half_open' then
            redis.call('HSET', KEYS[1], 'breaker', 'open', 'breaker_until', now)
            e[5], e[6] = 'open', tostring(now)
        end
    end
end
if not e[1] then
    return {1, -1, reaped}
end
if e[1] ~= 'true' then
    return {2, -1, reaped}
end
local function lease_wait()
    local f = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    if #f == 0 then
        return -1
    end
    return math.max(1, tonumber(f[2]) - now)
end
local probe = false
if e[5] == 'open' then
    local till = tonumber(e[6]) or 0
    if now < till then
        return {3, till - now, reaped}
    end
    probe, want = true, 1
elseif e[5] == 'half_open' then
    if probe_m and redis.call('ZSCORE', KEYS[4], probe_m) then
        return {3, lease_wait(), reaped}
    end
    probe, want = true, 1
end
local pause = tonumber(redis.call('HGET', KEYS[5], 'pause') or '0') or 0
if pause > now then
    return {4, pause - now, reaped}
end
local mif = tonumber(e[4] or '')
if mif and mif > 0 then
    local room = mif - redis.call('ZCARD', KEYS[4])
    if room <= 0 then
        return {5, lease_wait(), reaped}
    end
    want = math.min(want, room)
end
local T, tau, t0
if e[3] then
    local n, u = string.match(e[3], '^(%d+)/([smh])$')
    n = tonumber(n)
    if n and n > 0 then
        local w = (u == 's' and 1000) or (u == 'm' and 60000) or 3600000
        T = w / n
        local burst = math.max(1, math.floor(n * 100 / w))
        tau = (burst - 1) * T
        t0 = math.max(tonumber(redis.call('HGET', KEYS[5], 'tat') or '0') or 0, now)
        local k = math.floor((now + tau - t0) / T) + 1
        if k < 1 then
            return {6, math.max(1, math.ceil(t0 - tau - now)), reaped}
        end
        want = math.min(want, k)
    end
end

local ordered = e[2] == 'true'
local out = {0, -1, reaped}
local taken, blocked = 0, 0
local leases = {}
local keys = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0,
                       ordered and 4 * want + 16 or want)
local function lease(id, key)
    local m = id .. '\t' .. key .. '\t' .. me
    leases[#leases + 1] = now + lease_ms
    leases[#leases + 1] = m
    if probe then
        redis.call('HSET', KEYS[5], 'probe', m)
    end
    local a = tonumber(redis.call('HGET', KEYS[6], id) or '0') or 0
    return a + 1
end
for _, key in ipairs(keys) do
    if taken >= want then
        break
    end
    local lane = pre .. key
    if ordered then
        local h = redis.call('ZRANGE', lane, 0, 0)
        if #h == 0 then
            redis.call('ZREM', KEYS[3], key)
            redis.call('SREM', KEYS[2], key)
        elseif wm == '' or h[1] > wm or (fanning ~= '' and h[1] >= fanning) then
            blocked = blocked + 1
            redis.call('ZADD', KEYS[3], now, key) -- behind the others: no starving them
        else
            redis.call('ZREM', lane, h[1])
            redis.call('ZREM', KEYS[3], key)
            redis.call('HSET', KEYS[5], 'h:' .. key, 1)
            local a = lease(h[1], key)
            local nx = redis.call('ZRANGE', lane, 0, 0)
            out[#out + 1] = h[1]
            out[#out + 1] = key
            out[#out + 1] = a
            out[#out + 1] = redis.call('ZCARD', lane)
            out[#out + 1] = nx[1] or ''
            taken = taken + 1
        end
    else
        local got = redis.call('ZRANGEBYSCORE', lane, '-inf', now, 'LIMIT', 0, want - taken)
        if #got > 0 then
            redis.call('ZREM', lane, unpack(got))
        end
        for i = 1, #got do
            local a = lease(got[i], key)
            out[#out + 1] = got[i]
            out[#out + 1] = key
            out[#out + 1] = a
            out[#out + 1] = 0
            out[#out + 1] = ''
            taken = taken + 1
        end
        local first = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
        if #first == 0 then
            redis.call('ZREM', KEYS[3], key)
            redis.call('SREM', KEYS[2], key)
        else
            -- behind the keys waiting longer, or when its earliest job is due
            redis.call('ZADD', KEYS[3], math.max(now, tonumber(first[2])), key)
        end
    end
end
if taken > 0 then
    redis.call('ZADD', KEYS[4], unpack(leases))
    redis.call('HINCRBY', KEYS[5], 'n', -taken)
    if probe then
        redis.call('HSET', KEYS[1], 'breaker', 'half_open')
    end
    if T then
        t0 = t0 + taken * T
        redis.call('HSET', KEYS[5], 'tat', t0)
    end
end
-- when to come back
local wait = -1
local f = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #f > 0 then
    wait = math.max(0, tonumber(f[2]) - now)
end
if blocked > 0 then
    out[1] = 7
    wait = 0
end
if T and wait >= 0 then
    wait = math.max(wait, math.ceil(t0 - tau - now))
end
if wait < 0 then
    local lw = lease_wait()
    if lw > 0 then
        wait = lw
    end
end
out[2] = wait
return out
