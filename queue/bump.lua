-- bump.lua: rewrite one job in a processing list in place (a retry: its
-- attempt count goes up).
--
-- KEYS: processing list. ARGV: old element, new element.
-- Reply: 1 rewritten (or already rewritten, by an earlier call whose reply
--   was lost), 0 neither is there (another consumer recovered the job).
local i = redis.call('LPOS', KEYS[1], ARGV[1])
if i then
  redis.call('LSET', KEYS[1], i, ARGV[2])
  return 1
end
if redis.call('LPOS', KEYS[1], ARGV[2]) then return 1 end
return 0
