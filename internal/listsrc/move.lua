-- move.lua: move jobs out of a processing list (to a dead-letter list, or
-- back to the queue), each exactly once, each only if still there.
--
-- KEYS: processing list, destination list.
-- ARGV: "L" (LPUSH: the back of a queue, the head of a dead-letter list) or
--   "R" (RPUSH: the front of a queue), then pairs (element in the
--   processing list, element to push).
-- Reply: one integer per pair: 1 moved, 0 not in the processing list
--   (another consumer recovered it, or an earlier call moved it).
--
-- The push comes before the LREM: a failing push (a key of the wrong type)
-- aborts the script with the job still in the processing list.
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('LPOS', KEYS[1], ARGV[i]) then
    if ARGV[1] == 'R' then
      redis.call('RPUSH', KEYS[2], ARGV[i+1])
    else
      redis.call('LPUSH', KEYS[2], ARGV[i+1])
    end
    redis.call('LREM', KEYS[1], 1, ARGV[i])
    out[#out+1] = 1
  else
    out[#out+1] = 0
  end
end
return out
