#!lua flags=allow-oom
-- Settle a batch of jobs that go back or out, in one call: reschedule them (one ZADD
-- delay for all retries) or dead-letter them (XADD dead each), and only then acknowledge
-- and delete them from the jobs stream (one XACK, one XDEL). The batched form of
-- settle.lua, with the same guarantees per job; the worker's results stage uses it for
-- every RETRY / DEFERRED / DEAD job of a round (at most 100 jobs per call), settle.lua
-- stays for single jobs (malformed jobs entries, worker/intake.c).
-- KEYS[1] P:{q}:jobs, KEYS[2] P:{q}:delay, KEYS[3] P:{q}:dead, KEYS[4..] P:{ep}:endpoint
-- of each endpoint the jobs belong to, each once.
-- ARGV[1] group, ARGV[2] this consumer, ARGV[3] dead maxlen (0 = no cap), ARGV[4] number
-- of jobs, then per job: its stream id, the index in KEYS of its endpoint's hash (>= 4),
-- then "retry", due ms, delay member | "dead", n, n field/value pairs.
-- Returns one reply per job, in order: 1 settled; 0 no longer pending for THIS consumer
-- (another worker reclaimed it: whatever it does with the job wins, so a stale worker
-- never reschedules a job someone else delivered; nothing written); 2 its endpoint no
-- longer exists (acknowledged, nothing written for the removed endpoint); or an error
-- reply if its write failed (it is then not acknowledged: it stays pending and reclaim
-- hands it out again).
--
-- Ownership, exactly as settle.lua's per-job `XPENDING key group id id 1` + consumer
-- check, without a command per job: `XPENDING key group <lowest id> <highest id> count
-- <me>` lists the entries of THIS consumer's own pending list in the batch's id range
-- (with a consumer, Redis walks that consumer's PEL, so every entry it returns is ours
-- and every entry pending for us in the range is returned), page after page from
-- "(<last id>" until a page comes back short, so a consumer holding more entries in the
-- range than a page still gets an exact answer. A job is ours iff its id is in that set.
-- Not used, because not equivalent: XPENDING without a consumer over a range (needs the
-- consumer of each entry checked, and a count that covers every consumer's entries), XCLAIM
-- ... JUSTID with min-idle 0 (it would take the job back from the worker that reclaimed
-- it) and the XACK reply (XACK acknowledges an entry whoever's it is).
-- Endpoint check: one EXISTS over every endpoint hash of the owned jobs; only when it
-- counts fewer than it was given (an endpoint removed meanwhile: rare) one EXISTS per hash.
--
-- Why "allow-oom" (Redis >= 7.0 script flags): without it, a Redis at maxmemory refuses
-- the script (or its first write) and the jobs stay pending until reclaim hands them out
-- again after the visibility timeout, again and again while Redis stays full. This
-- script only moves existing jobs (jobs stream -> delay zset or dead stream), so it may
-- run at maxmemory: the overshoot is one zset member or dead entry per failed job. The
-- writes come before the XACK, and a job whose write failed (any other error: a key of
-- the wrong type) is left out of the XACK; the others of the batch are still settled.
-- The whole argument list is checked before anything is written (Lua does not roll back).
-- Hash slots: KEYS[1..3] share {q}; each endpoint hash has its own tag, so a call
-- touches the queue's slot and one per endpoint of the batch (settle.lua touched {q} and
-- one endpoint). Redis Cluster is not supported yet (docs/worker.md "Known limits"); for
-- it, the endpoint check would have to move to a {q}-tagged key.
local group, me = ARGV[1], ARGV[2]
local maxlen = tonumber(ARGV[3])
local njobs = tonumber(ARGV[4])
local function bad()
    return redis.error_reply('ERR settle_batch.lua: bad argument list')
end
if not maxlen or not njobs or njobs < 1 then
    return bad()
end
local jobs = {}
local lo_ms, lo_seq, hi_ms, hi_seq, from, to
local i = 5
for k = 1, njobs do
    local sid, ki, mode = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    if not sid or not ki or ki < 4 or ki > #KEYS or ki ~= math.floor(ki) then
        return bad()
    end
    local ms, seq = string.match(sid, '^(%d+)-(%d+)$')
    if not ms then
        return bad()
    end
    ms, seq = tonumber(ms), tonumber(seq)
    if not lo_ms or ms < lo_ms or (ms == lo_ms and seq < lo_seq) then
        lo_ms, lo_seq, from = ms, seq, sid
    end
    if not hi_ms or ms > hi_ms or (ms == hi_ms and seq > hi_seq) then
        hi_ms, hi_seq, to = ms, seq, sid
    end
    local j = {sid = sid, key = KEYS[ki], mode = mode, at = i + 3}
    if mode == 'retry' then
        if not tonumber(ARGV[i + 3]) or not ARGV[i + 4] then
            return bad()
        end
        i = i + 5
    elseif mode == 'dead' then
        local np = tonumber(ARGV[i + 3])
        if not np or np < 1 or np > 100 then
            return bad()
        end
        j.at, j.np = i + 4, np
        i = i + 4 + 2 * np
    else
        return bad()
    end
    jobs[k] = j
end
if i ~= #ARGV + 1 then
    return bad()
end

-- which jobs are still pending for this consumer
local mine = {}
local page = 2 * njobs + 100
while true do
    local p = redis.call('XPENDING', KEYS[1], group, from, to, page, me)
    for k = 1, #p do
        mine[p[k][1]] = true
    end
    if #p < page then
        break
    end
    from = '(' .. p[#p][1]
end

-- which of their endpoints still exist
local gone = {}
local check, seen = {}, {}
for k = 1, njobs do
    local key = jobs[k].key
    if mine[jobs[k].sid] and not seen[key] then
        seen[key] = true
        check[#check + 1] = key
    end
end
if #check > 0 and redis.call('EXISTS', unpack(check)) ~= #check then
    for k = 1, #check do
        if redis.call('EXISTS', check[k]) == 0 then
            gone[check[k]] = true
        end
    end
end

-- writes first, then one XACK + XDEL of every job settled or whose endpoint is gone
local out, ack = {}, {}
local zadd = {}
for k = 1, njobs do
    local j = jobs[k]
    if not mine[j.sid] then
        out[k] = 0
    elseif gone[j.key] then
        out[k] = 2
        ack[#ack + 1] = j.sid
    elseif j.mode == 'retry' then
        zadd[#zadd + 1] = ARGV[j.at]
        zadd[#zadd + 1] = ARGV[j.at + 1]
        out[k] = 1
    end
end
local zerr = nil
if #zadd > 0 then
    local r = redis.pcall('ZADD', KEYS[2], unpack(zadd))
    if type(r) == 'table' and r.err then
        zerr = r
    end
end
for k = 1, njobs do
    local j = jobs[k]
    if out[k] == nil then -- an owned dead letter
        local r
        if maxlen > 0 then
            r = redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*',
                            unpack(ARGV, j.at, j.at + 2 * j.np - 1))
        else
            r = redis.pcall('XADD', KEYS[3], '*', unpack(ARGV, j.at, j.at + 2 * j.np - 1))
        end
        if type(r) == 'table' and r.err then
            out[k] = r
        else
            out[k] = 1
            ack[#ack + 1] = j.sid
        end
    elseif out[k] == 1 then -- an owned retry
        if zerr then
            out[k] = zerr
        else
            ack[#ack + 1] = j.sid
        end
    end
end
if #ack > 0 then
    redis.call('XACK', KEYS[1], group, unpack(ack))
    redis.call('XDEL', KEYS[1], unpack(ack))
end
return out
