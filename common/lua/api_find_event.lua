#!lua flags=no-writes
-- Find an event by its id for GET /v1/events/{id} and its retry, with bounded work and
-- without sending entries that are not it over the wire (data may be 1 MiB each).
-- KEYS[1] P:{q}:events, KEYS[2] P:{q}:idem:<id>
-- ARGV[1] the event id; ARGV[2] where a scan forward starts and ARGV[3] where one
-- backward starts (exclusive), both "<ms>-0" around the time a generated id carries, or
-- '' for none; ARGV[4] at most this many entries per direction; ARGV[5] at most this
-- many of the newest entries when the rest did not find it.
-- In order: the idempotency mark of a producer-chosen id names the entry; a raw
-- producer's default id "evt_<ms><seq>" names it too (every split is tried); a generated
-- id's time is where the entry is, give or take clock skew, so the stream is walked from
-- there both ways; last, the newest entries. An entry is the event when its `id` field
-- is the id, or it has none and its default id is.
-- Returns {1, {stream id, fields}} when found, else {0, the stream id the mark names when
-- its entry is gone (trimmed by events.retention), or ''}.
local want = ARGV[1]
local CHUNK = 20

local function is_it(e)
    local f = e[2]
    for i = 1, #f, 2 do
        if f[i] == 'id' then
            return f[i + 1] == want
        end
    end
    local ms, seq = string.match(e[1], '^(%d+)%-(%d+)$')
    return ms ~= nil and ('evt_' .. ms .. seq) == want
end

-- The entry at sid if it is the event; else nil and whether sid names no entry at all
-- (false too when sid is no stream id: a mark holding anything else says nothing).
local function one(sid)
    local r = redis.pcall('XRANGE', KEYS[1], sid, sid, 'COUNT', 1)
    if type(r) ~= 'table' or r.err then
        return nil, false
    end
    if #r == 1 and is_it(r[1]) then
        return r[1], false
    end
    return nil, #r == 0
end

-- Walk from `from` in one direction, at most budget entries.
local function walk(cmd, from, budget)
    local bound = from
    while budget > 0 do
        local n = math.min(CHUNK, budget)
        local r
        if cmd == 'XRANGE' then
            r = redis.call('XRANGE', KEYS[1], bound, '+', 'COUNT', n)
        else
            r = redis.call('XREVRANGE', KEYS[1], bound, '-', 'COUNT', n)
        end
        for _, e in ipairs(r) do
            if is_it(e) then
                return e, false
            end
        end
        if #r < n then
            return nil, true
        end
        budget = budget - #r
        bound = '(' .. r[#r][1]
    end
    return nil, false
end

local gone = ''
local mark = redis.call('GET', KEYS[2])
if mark then
    local e, none = one(mark)
    if e then
        return {1, e}
    end
    if none then
        gone = mark
    end
end

local digits = string.match(want, '^evt_(%d+)$')
if digits and #digits <= 40 then
    for k = 1, #digits - 1 do
        local ms, seq = string.sub(digits, 1, k), string.sub(digits, k + 1)
        if (k == 1 or string.sub(ms, 1, 1) ~= '0') and
            (#seq == 1 or string.sub(seq, 1, 1) ~= '0') then
            local e = one(ms .. '-' .. seq)
            if e then
                return {1, e}
            end
        end
    end
end

local per = tonumber(ARGV[4]) or 0
local forward_ended = false
if ARGV[2] ~= '' then
    local e, ended = walk('XRANGE', ARGV[2], per)
    if e then
        return {1, e}
    end
    forward_ended = ended
    e = walk('XREVRANGE', '(' .. ARGV[3], per)
    if e then
        return {1, e}
    end
end
-- The forward walk that reached the end saw every entry the newest walk would.
if not forward_ended then
    local e = walk('XREVRANGE', '+', tonumber(ARGV[5]) or 0)
    if e then
        return {1, e}
    end
end
return {0, gone}
