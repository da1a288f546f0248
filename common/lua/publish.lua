-- Publish one event with a producer-chosen id, at most once per id.
-- KEYS[1] events stream, KEYS[2] idempotency key P:{q}:idem:<id>
-- ARGV[1] idempotency ttl in ms, ARGV[2..] stream field/value pairs
-- Returns {stream entry id, 1 if this call added it, 0 if it was there already}.
-- GET before XADD and SET after it: if XADD fails (e.g. OOM) nothing is written.
local prev = redis.call('GET', KEYS[2])
if prev then
    return {prev, 0}
end
local sid = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], sid, 'PX', ARGV[1])
return {sid, 1}
