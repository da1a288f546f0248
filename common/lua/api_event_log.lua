#!lua flags=no-writes
-- The attempts of one event in one endpoint's delivery log, for GET /v1/events/{id}:
-- the log's entries name the event by its stream id (`event`), and are written after
-- it, so the log is read from that id on, filtered here so only the event's attempts
-- cross the wire. Bounded: a busy endpoint's log can hold delivery.log_maxlen entries.
-- KEYS[1] P:{ep}:log; ARGV[1] the event's stream id, ARGV[2] at most this many log
-- entries read, ARGV[3] at most this many attempts returned.
-- Returns {truncated (1 when a bound ended the read before the log did), entry, ...}.
local sid = ARGV[1]
local budget, keep = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {0}
local bound = sid
while true do
    if budget <= 0 then
        if #redis.call('XRANGE', KEYS[1], bound, '+', 'COUNT', 1) > 0 then
            out[1] = 1
        end
        return out
    end
    local n = math.min(100, budget)
    local r = redis.call('XRANGE', KEYS[1], bound, '+', 'COUNT', n)
    for _, e in ipairs(r) do
        local f = e[2]
        for i = 1, #f, 2 do
            if f[i] == 'event' then
                if f[i + 1] == sid then
                    if #out > keep then
                        out[1] = 1
                        return out
                    end
                    out[#out + 1] = e
                end
                break
            end
        end
    end
    if #r < n then
        return out
    end
    budget = budget - #r
    bound = '(' .. r[#r][1]
end
