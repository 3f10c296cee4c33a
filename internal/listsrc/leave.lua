-- leave.lua: deregister a consumer that stops with an empty processing
-- list: delete its heartbeat and remove it from the registry. A non-empty
-- list is left for the recovery sweep, after the heartbeat expires.
--
-- KEYS: processing list, heartbeat key, registry. ARGV: consumer name.
-- Reply: 1 deregistered, 0 the processing list still holds jobs.
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
