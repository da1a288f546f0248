-- Fan out a batch of events into delivery jobs, atomically with acknowledging them.
-- KEYS[1] P:{q}:events, KEYS[2] P:{q}:jobs, KEYS[3] P:{q}:dead, KEYS[4] P:{q}:endpoints:version
-- ARGV[1] consumer name, ARGV[2] how many jobs to claim for it afterwards (0 = none),
-- ARGV[3] the endpoints version the worker matched against, ARGV[4] n good events, then per event: stream id, n endpoints, endpoint ids...;
-- then n bad events, per bad event: stream id, reason, n fields, field/value pairs
-- (already named "f.<name>" by the worker).
-- Good events get one job (event, endpoint, attempt=1) per endpoint; bad ones go to the
-- dead-letter stream; all are acknowledged in the "fanout" group in the same script, so
-- a crash never loses or duplicates a fanout. The events stay in their stream (jobs
-- refer to them; the worker trims by age).
-- Then XREADGROUP on the "deliver" group claims up to ARGV[2] jobs for this consumer,
-- saving the worker a round trip; usually exactly the jobs just added.
-- Returns {jobs added, XREADGROUP reply or false, error text or false}, or
-- {-1, current version} without doing anything when the worker's endpoint table is older
-- than the endpoints now in Redis: an endpoint created before an event was published must
-- receive it, so the worker reloads and runs the batch again.
local me = ARGV[1]
local claim = tonumber(ARGV[2])
local ver = tonumber(redis.call('GET', KEYS[4]) or '0')
if ver ~= tonumber(ARGV[3]) then
    return {-1, ver}
end
local i = 4
local acks = {}
local njobs = 0
local nev = tonumber(ARGV[i])
i = i + 1
for _ = 1, nev do
    local sid, nep = ARGV[i], tonumber(ARGV[i + 1])
    i = i + 2
    for k = 0, nep - 1 do
        redis.call('XADD', KEYS[2], '*', 'event', sid, 'endpoint', ARGV[i + k], 'attempt', '1')
    end
    i = i + nep
    njobs = njobs + nep
    acks[#acks + 1] = sid
end
local nbad = tonumber(ARGV[i])
i = i + 1
for _ = 1, nbad do
    local sid, reason, nf = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    local f = {'kind', 'event', 'source', sid, 'reason', reason}
    for k = 0, 2 * nf - 1 do
        f[#f + 1] = ARGV[i + k]
    end
    i = i + 2 * nf
    redis.call('XADD', KEYS[3], '*', unpack(f))
    acks[#acks + 1] = sid
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
        return {njobs, false, r.err}
    end
    return {njobs, r, false}
end
return {njobs, false, false}
