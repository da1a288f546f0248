-- Fan out a batch of events into delivery jobs, atomically with acknowledging them.
-- KEYS[1] P:{q}:events, KEYS[2] P:{q}:jobs, KEYS[3] P:{q}:dead, KEYS[4] P:{q}:endpoints:version
-- ARGV[1] consumer name, ARGV[2] how many jobs to claim for it afterwards (0 = none),
-- ARGV[3] the endpoints version the worker matched against, ARGV[4] dead maxlen (0 = no
-- cap), ARGV[5] lowest and ARGV[6] highest stream id of the batch, ARGV[7] n good
-- events, then per event: stream id, n endpoints, endpoint ids...; then n bad events,
-- per bad event: stream id, reason, n pairs, field/value pairs (bounded by the worker:
-- worker/dead_letter.h).
-- Only events still pending for THIS consumer are fanned out: one another worker
-- reclaimed and acknowledged meanwhile is skipped (fanning it out again would deliver it
-- twice). Good events get one job (event, endpoint, attempt=1) per endpoint; bad ones go
-- to the dead-letter stream; all are acknowledged in the same script, so a crash never
-- loses or duplicates a fanout. The arguments are checked whole before the first write,
-- so a malformed call fails without leaving half a batch (Lua does not roll back).
-- Then XREADGROUP on the "deliver" group claims up to ARGV[2] jobs for this consumer.
-- Returns {jobs added, XREADGROUP reply or false, error text or false, events skipped},
-- or {-1, current version} without doing anything when the worker's endpoint table is
-- older than the endpoints now in Redis: an endpoint created before an event was
-- published must receive it, so the worker reloads and runs the batch again.
local me = ARGV[1]
local claim = tonumber(ARGV[2])
local ver = tonumber(redis.call('GET', KEYS[4]) or '0')
if ver ~= tonumber(ARGV[3]) then
    return {-1, ver}
end
local maxlen = tonumber(ARGV[4])
-- check the shape of every argument before writing anything
local i = 7
local nev = tonumber(ARGV[i])
if not nev then
    return redis.error_reply('ERR fanout.lua: bad argument list')
end
i = i + 1
for _ = 1, nev do
    local nep = tonumber(ARGV[i + 1])
    if not nep then
        return redis.error_reply('ERR fanout.lua: bad argument list')
    end
    i = i + 2 + nep
end
local nbad = tonumber(ARGV[i])
if not nbad then
    return redis.error_reply('ERR fanout.lua: bad argument list')
end
i = i + 1
for _ = 1, nbad do
    local nf = tonumber(ARGV[i + 2])
    if not nf or nf > 200 then
        return redis.error_reply('ERR fanout.lua: bad argument list')
    end
    i = i + 3 + 2 * nf
end
if i ~= #ARGV + 1 then
    return redis.error_reply('ERR fanout.lua: bad argument list')
end
local mine = {}
local pend = redis.call('XPENDING', KEYS[1], 'fanout', ARGV[5], ARGV[6],
                        10 * (nev + nbad) + 1000, me)
for k = 1, #pend do
    mine[pend[k][1]] = true
end
i = 8
local acks = {}
local njobs, skipped = 0, 0
for _ = 1, nev do
    local sid, nep = ARGV[i], tonumber(ARGV[i + 1])
    i = i + 2
    if mine[sid] then
        for k = 0, nep - 1 do
            redis.call('XADD', KEYS[2], '*', 'event', sid, 'endpoint', ARGV[i + k], 'attempt', '1')
        end
        njobs = njobs + nep
        acks[#acks + 1] = sid
    else
        skipped = skipped + 1
    end
    i = i + nep
end
i = i + 1
for _ = 1, nbad do
    local sid, reason, nf = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    if mine[sid] then
        local f = {'kind', 'event', 'source', sid, 'reason', reason}
        for k = 0, 2 * nf - 1 do
            f[#f + 1] = ARGV[i + k]
        end
        if maxlen > 0 then
            redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', unpack(f))
        else
            redis.call('XADD', KEYS[3], '*', unpack(f))
        end
        acks[#acks + 1] = sid
    else
        skipped = skipped + 1
    end
    i = i + 2 * nf
end
local a = 1
while a <= #acks do
    local b = math.min(a + 4999, #acks)
    redis.call('XACK', KEYS[1], 'fanout', unpack(acks, a, b))
    a = b + 1
end
if claim > 0 and njobs > 0 then
    -- pcall: if the deliver group is missing the fanout above still stands
    local r = redis.pcall('XREADGROUP', 'GROUP', 'deliver', me, 'COUNT', claim, 'STREAMS',
                          KEYS[2], '>')
    if type(r) == 'table' and r.err then
        return {njobs, false, r.err, skipped}
    end
    return {njobs, r, false, skipped}
end
return {njobs, false, false, skipped}
