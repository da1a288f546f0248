-- Spike (layout A + ordering): what the shared stream would need for an ordered endpoint.
-- KEYS[1] P:{ep}:ord:<key> (string: the job id in flight for this order key, with a
-- lease TTL), KEYS[2] P:{ep}:park:<key> (list: jobs read from the jobs stream while the
-- key was busy, in stream order). ARGV[1] job id, ARGV[2] lease ms.
-- Returns 1 if the job may go now, 0 if it was parked behind the one in flight.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 0
