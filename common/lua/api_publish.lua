-- POST /v1/events with an Idempotency-Key: look the key up, publish, and remember the
-- answer, in one atomic call, so requests that share a key publish once however they
-- race, and a retry gets the first answer back.
-- KEYS[1] P:{q}:events, KEYS[2] P:{q}:apiidem:<scope>:<sha256 of the key>, and only when
-- the producer chose the event id, KEYS[3] P:{q}:idem:<event id> (as publish.lua).
-- ARGV[1] SHA-256 of the request body (hex), ARGV[2] ttl ms of the marks
-- (events.idempotency_ttl), ARGV[3] the event id, ARGV[4] the answer's status,
-- ARGV[5..] the events stream field/value pairs.
-- Returns {0, stream id, duplicate, event id, status} after a publish (duplicate 1: the
-- producer id named an event published before, nothing was added), {1, the same five of
-- the first answer} when the key was seen with this body, {2} when it was seen with
-- another body. Reads first and writes after XADD: if XADD fails (OOM) nothing is kept.
local prev = redis.call('HMGET', KEYS[2], 'fingerprint', 'stream_id', 'duplicate',
                        'event_id', 'status')
if prev[1] then
    if prev[1] ~= ARGV[1] then
        return {2}
    end
    return {1, prev[2], tonumber(prev[3]) or 0, prev[4], tonumber(prev[5]) or 202}
end
local sid, dup = false, 0
if KEYS[3] then
    sid = redis.call('GET', KEYS[3])
    if sid then
        dup = 1
    end
end
if not sid then
    sid = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
    if KEYS[3] then
        redis.call('SET', KEYS[3], sid, 'PX', ARGV[2])
    end
end
redis.call('HSET', KEYS[2], 'fingerprint', ARGV[1], 'stream_id', sid, 'duplicate', dup,
           'event_id', ARGV[3], 'status', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {0, sid, dup, ARGV[3], tonumber(ARGV[4])}
