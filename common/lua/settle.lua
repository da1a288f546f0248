#!lua flags=allow-oom
-- Settle a job that goes back or out: reschedule it (ZADD delay) or dead-letter it (XADD
-- dead), and only then acknowledge and delete it from the jobs stream, atomically.
-- KEYS[1] P:{q}:jobs, KEYS[2] P:{q}:delay, KEYS[3] P:{q}:dead, KEYS[4] P:{ep}:endpoint
-- ARGV[1] group, ARGV[2] this consumer, ARGV[3] job stream id, ARGV[4] dead maxlen (0 =
-- no cap), ARGV[5] "retry" | "dead" | "entry";
--   retry: ARGV[6] due ms, ARGV[7] delay member; dead, entry: ARGV[6..] field/value pairs.
-- "entry" is a malformed jobs entry: it has no endpoint, KEYS[4] is not looked at.
-- Returns 1 if settled; 0 if the job is no longer pending for THIS consumer (another
-- worker reclaimed it: whatever it does with the job wins, so a stale worker never
-- reschedules a job someone else delivered); 2 if the endpoint no longer exists (the
-- job is acknowledged and nothing is written for the removed endpoint).
--
-- Why "allow-oom" (Redis >= 7.0 script flags): without it, a Redis at maxmemory refuses
-- the script (or its first write) and the job stays pending until reclaim hands it out
-- again after the visibility timeout, again and again while Redis stays full. This
-- script only moves an existing job (jobs stream -> delay zset or dead stream), so it may
-- run at maxmemory: the overshoot is one zset member or dead entry per failed job. The
-- write still comes before the XACK: any other error aborts before the job is acked.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then
    return 0
end
local mode = ARGV[5]
if mode ~= 'entry' and redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
    redis.call('XDEL', KEYS[1], ARGV[3])
    return 2
end
if mode == 'retry' then
    redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
else
    local maxlen = tonumber(ARGV[4])
    if maxlen > 0 then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, 6))
    else
        redis.call('XADD', KEYS[3], '*', unpack(ARGV, 6))
    end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
