-- Write one delivery log entry, but only for an endpoint that still exists. The worker
-- writes log lines with XADD NOMKSTREAM (one command, no script on the happy path);
-- when that finds no stream (an endpoint's first log line, or one removed while its
-- deliveries were in flight) it comes here, so a removed endpoint's log is never
-- created again by results that arrive after `endpoint rm`.
-- KEYS[1] P:{ep}:log, KEYS[2] P:{ep}:endpoint; ARGV[1] MAXLEN (~), ARGV[2..] pairs.
-- Returns 1 if written, 0 if the endpoint is gone.
if redis.call('EXISTS', KEYS[2]) == 0 then
    return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
return 1
