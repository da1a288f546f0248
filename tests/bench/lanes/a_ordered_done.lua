-- Spike (layout A + ordering): the job in flight for an order key is settled; hand the
-- key to the next parked job (returned, the lease kept) or free it.
-- KEYS as a_ordered_take.lua; ARGV[1] lease ms. Returns the next job id or false.
local nxt = redis.call('LPOP', KEYS[2])
if nxt then
    redis.call('SET', KEYS[1], nxt, 'PX', ARGV[1])
    return nxt
end
redis.call('DEL', KEYS[1])
return false
