-- recover.lua: move every job of a consumer's processing list back to the
-- front of its queue (the end consumers pop from), in the order they were
-- fetched, unless the consumer's heartbeat is alive.
--
-- KEYS: queue, processing list, heartbeat key, registry.
-- ARGV: consumer name, force ("1": this consumer's own list at start-up:
--   ignore the heartbeat and keep the registry entry).
-- Reply: the number of jobs moved, or -1 when the heartbeat is alive.
--
-- LMOVE checks the queue's type before popping, so a wrong type moves
-- nothing.
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local n = 0
while redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT') do n = n + 1 end
if ARGV[2] ~= '1' then redis.call('SREM', KEYS[4], ARGV[1]) end
return n
