#!lua flags=allow-oom
-- Renew this worker's lease on the jobs it holds: reset their idle time, so reclaim
-- (XAUTOCLAIM after delivery.visibility_timeout) never hands another worker a job this
-- one still has queued or in flight, however long it waits for a slot.
-- KEYS[1] P:{q}:jobs; ARGV[1] group, ARGV[2] this consumer, ARGV[3..] job ids.
-- Only ids still pending for THIS consumer are touched: a job another worker already
-- reclaimed stays theirs (XCLAIM alone would take it back). JUSTID: the delivery count
-- is not raised. allow-oom: XCLAIM adds no data, and leases must hold while Redis is full.
-- Returns the number of leases renewed.
local n = #ARGV - 2
if n <= 0 then
    return 0
end
local mine = {}
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 2 * n + 1000, ARGV[2])
for i = 1, #p do
    mine[p[i][1]] = true
end
local ids = {}
for i = 3, #ARGV do
    if mine[ARGV[i]] then
        ids[#ids + 1] = ARGV[i]
    end
end
local a = 1
while a <= #ids do
    local b = math.min(a + 4999, #ids)
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids, a, b), 'JUSTID')
    a = b + 1
end
return #ids
