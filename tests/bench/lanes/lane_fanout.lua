-- Spike (layout B, "lanes"): append one partition's share of a fanout batch to its lanes.
-- Every key carries the partition's hash tag {qN}, so the call touches one slot.
-- KEYS[1] P:{qN}:ready (zset: lane member -> earliest ms it may send),
-- KEYS[2] P:{qN}:fanned (hash: lane member -> highest event stream id appended),
-- KEYS[3] P:{qN}:state (hash: "<member>:h" = 1 while an ordered lane's head is leased,
--         "<ep>:n" in-flight count, "<ep>:tat" GCRA state).
-- ARGV[1] lane key prefix "P:{qN}:lane:", ARGV[2] n lanes, then per lane: member,
-- ordered (0/1), n ids, the job ids (event stream ids, ascending).
-- Ids <= the lane's "fanned" mark are skipped: a fanout replayed after a crash (the
-- events are XACKed in a second step, on {q}) appends nothing twice. That needs ONE
-- fanout writer at a time (a lease on {q}), so lanes receive events in stream order.
-- A lane that was empty becomes ready (ZADD NX, score now) unless it is an ordered lane
-- whose head is leased (its ack makes it ready again).
-- Returns the number of jobs appended.
local function gt(a, b) -- stream id a > b
    if not b then return true end
    local am, as = string.match(a, '^(%d+)-(%d+)$')
    local bm, bs = string.match(b, '^(%d+)-(%d+)$')
    am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
    return am > bm or (am == bm and as > bs)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pre, nl = ARGV[1], tonumber(ARGV[2])
local lanes, members = {}, {}
local i = 3
for k = 1, nl do
    local n = tonumber(ARGV[i + 2])
    lanes[k] = {m = ARGV[i], o = ARGV[i + 1] == '1', a = i + 3, n = n}
    members[k] = ARGV[i]
    i = i + 3 + n
end
local marks = redis.call('HMGET', KEYS[2], unpack(members))
local hset, zadd, pushed = {}, {}, 0
for k = 1, nl do
    local l = lanes[k]
    local ids = {}
    for j = l.a, l.a + l.n - 1 do
        if gt(ARGV[j], marks[k] or nil) then ids[#ids + 1] = ARGV[j] end
    end
    if #ids > 0 then
        local len = redis.call('RPUSH', pre .. l.m, unpack(ids))
        pushed = pushed + #ids
        hset[#hset + 1] = l.m
        hset[#hset + 1] = ids[#ids]
        if len == #ids and not (l.o and redis.call('HEXISTS', KEYS[3], l.m .. ':h') == 1) then
            zadd[#zadd + 1] = now
            zadd[#zadd + 1] = l.m
        end
    end
end
if #hset > 0 then redis.call('HSET', KEYS[2], unpack(hset)) end
if #zadd > 0 then redis.call('ZADD', KEYS[1], 'NX', unpack(zadd)) end
return pushed
