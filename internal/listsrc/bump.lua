-- bump.lua: rewrite jobs in a processing list in place (retries: their
-- delivery count goes up).
--
-- KEYS: processing list. ARGV: pairs (old element, new element).
-- Reply: one integer per pair: 1 rewritten (or already rewritten, by an
--   earlier call whose reply was lost), 0 neither is there (another
--   consumer recovered the job).
--
-- Failed jobs are older than most: the search starts from the tail, where
-- the oldest jobs are.
local out = {}
for i = 1, #ARGV, 2 do
  local at = redis.call('LPOS', KEYS[1], ARGV[i], 'RANK', -1)
  if at then
    redis.call('LSET', KEYS[1], at, ARGV[i+1])
    out[#out+1] = 1
  elseif redis.call('LPOS', KEYS[1], ARGV[i+1], 'RANK', -1) then
    out[#out+1] = 1
  else
    out[#out+1] = 0
  end
end
return out
