-- The ordering point of the events stream for ordered lanes (docs/policies.md "The
-- watermark"): every event up to the fanout group's last-delivered id that is not still
-- pending in the group has been fanned out, so a lane head is safe to deliver iff it is
-- at or below the first and below the second. Monotonic: a stale answer is only
-- stricter, never looser.
-- KEYS[1] P:{q}:events; ARGV[1] the fanout group.
-- Returns {last delivered id, lowest pending id or ""}; {"", ""} if there is no group.
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err then
    return {'', ''}
end
local last = ''
for _, g in ipairs(groups) do
    local name, ld
    for i = 1, #g, 2 do
        if g[i] == 'name' then
            name = g[i + 1]
        elseif g[i] == 'last-delivered-id' then
            ld = g[i + 1]
        end
    end
    if name == ARGV[1] then
        last = ld or ''
    end
end
if last == '' then
    return {'', ''}
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1])
local lo = ''
if tonumber(p[1]) and tonumber(p[1]) > 0 and p[2] then
    lo = p[2]
end
return {last, lo}
