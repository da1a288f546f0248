#!lua
-- POST /v1/dead/replay: move dead letters back to the jobs stream as attempt-1 jobs,
-- each atomically (the job is added and the letter removed together, as `hookq dead
-- replay` does with MULTI), and only while the letter is still there, so two replays
-- racing over one letter queue it once. The shebang without allow-oom makes Redis
-- refuse the whole call at maxmemory, rather than stop half way through a batch.
-- KEYS[1] P:{q}:dead, KEYS[2] P:{q}:jobs, KEYS[3] P:{q}:events
-- ARGV: triples (dead letter id, its event's stream id, endpoint id).
-- Returns one code per triple: 1 replayed; 0 the letter is gone (replayed or purged
-- meanwhile); -1 its event is no longer in the events stream (events.retention), the
-- letter stays; -2 its event field is not a stream id, the letter stays.
local out = {}
for i = 1, #ARGV - 2, 3 do
    local id, ev, ep = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local code
    if #redis.call('XRANGE', KEYS[1], id, id, 'COUNT', 1) == 0 then
        code = 0
    else
        local e = redis.pcall('XRANGE', KEYS[3], ev, ev, 'COUNT', 1)
        if type(e) ~= 'table' or e.err then
            code = -2
        elseif #e == 0 then
            code = -1
        else
            redis.call('XADD', KEYS[2], '*', 'event', ev, 'endpoint', ep, 'attempt', '1')
            redis.call('XDEL', KEYS[1], id)
            code = 1
        end
    end
    out[#out + 1] = code
end
return out
