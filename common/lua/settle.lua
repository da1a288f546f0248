#!lua flags=allow-oom
-- Settle a failed job: reschedule it (ZADD delay) or dead-letter it (XADD dead), and only
-- then acknowledge and delete it from the jobs stream, in one atomic script. As separate
-- commands, a Redis at maxmemory (noeviction) refused the ZADD/XADD (denyoom) but took
-- the XACK/XDEL, and the job was gone.
-- KEYS[1] P:{q}:jobs, KEYS[2] P:{q}:delay, KEYS[3] P:{q}:dead
-- ARGV[1] group, ARGV[2] job stream id, ARGV[3] "retry" or "dead";
--   retry: ARGV[4] due ms, ARGV[5] delay member; dead: ARGV[4..] field/value pairs.
-- Returns 1 if settled, 0 if the job was no longer pending (another worker reclaimed and
-- settled it already: scheduling it again would duplicate it).
--
-- Why "allow-oom" (Redis >= 7.0 script flags): a script with a "#!lua" line and no
-- allow-oom/no-writes flag is refused as a whole with -OOM while Redis is over maxmemory;
-- one without that line starts, and its first denyoom write (the ZADD/XADD here) raises
-- -OOM, aborting the script before the XACK (scripts are not rolled back, so the write
-- must come first). Either way the job would stay pending and come back only through
-- reclaim, after the visibility timeout, as another real attempt (or, for a deferred job,
-- a wait) - and again and again while Redis stays full. This script moves an existing
-- job from the jobs stream to the delay zset or the dead stream; it adds no work, so it
-- may run at maxmemory: the overshoot is one zset member or dead entry per failed job.
-- The write still comes first: any other error aborts before the job is acknowledged.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then
    return 0
end
if ARGV[3] == 'retry' then
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
else
    redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
