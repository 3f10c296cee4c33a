-- pop.lua: pop up to ARGV[1] jobs, in priority order, from the queues
-- (simple mode: at most once).
--
-- KEYS: the queues in priority order.
-- ARGV: count, fair ("1": first take one job from each lower-priority queue).
-- Reply: {"", i1, job1, i2, job2, ...} where i is the queue's index; or {key}
--   when key holds another type than a list (then nothing was popped).
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'list' and t ~= 'none' then return {KEYS[i]} end
end
local want = tonumber(ARGV[1])
local out = {''}
local got = 0
local function take(i)
  local e = redis.call('RPOP', KEYS[i])
  if not e then return false end
  got = got + 1
  out[#out+1] = i
  out[#out+1] = e
  return true
end
if ARGV[2] == '1' then
  for i = 2, #KEYS do
    if got < want then take(i) end
  end
end
for i = 1, #KEYS do
  while got < want and take(i) do end
end
return out
