#!lua flags=allow-oom
-- Move due jobs from the delay zset back into the jobs stream.
-- KEYS[1] P:{q}:delay, KEYS[2] P:{q}:jobs; ARGV[1] max jobs to move
-- Members are "<event stream id> <endpoint id> <attempt> <delivery id>"; the score is
-- the due time in ms. "Now" is Redis TIME, so worker clocks do not matter, and the
-- script is atomic, so concurrent promoters never move a job twice.
-- Returns the number of jobs moved.
-- allow-oom (Redis >= 7.0): it moves existing jobs (ZREM what it XADDs), so it must keep
-- running while Redis is at maxmemory (noeviction), or retries and deferred jobs would
-- sit in the delay zset until there is room; without the flag Redis refuses the XADD.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for i = 1, #due do
    local ev, ep, att = string.match(due[i], '^(%S+) (%S+) (%S+)')
    if ev then
        redis.call('XADD', KEYS[2], '*', 'event', ev, 'endpoint', ep, 'attempt', att)
    end
end
local i = 1
while i <= #due do
    local j = math.min(i + 4999, #due)
    redis.call('ZREM', KEYS[1], unpack(due, i, j))
    i = j + 1
end
return #due
