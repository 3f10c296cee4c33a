-- fetch.lua: move up to ARGV[2] jobs, in priority order, from the queues to
-- this consumer's processing lists (reliable mode).
--
-- KEYS, for each queue i in priority order: queue, processing list, registry
--   (KEYS[3i-2], KEYS[3i-1], KEYS[3i]).
-- ARGV: consumer name, count, fair ("1": first take one job from each
--   lower-priority queue), then one fresh job ID per job to fetch (used to
--   wrap plain strings).
-- Reply: {"", i1, job1, i2, job2, ...} where i is the queue's index and job
--   the element now in its processing list; or {key} when key holds
--   another type than a list (then nothing was moved).
--
-- Each job moves with LMOVE (atomic, checks both types before popping) and
-- is then rewritten in place (LSET index 0): a plain string is wrapped in an
-- envelope with an ID, an envelope gets its attempt count "n" incremented,
-- a malformed envelope is left as it is (the consumer dead-letters it).
local k = #KEYS / 3
for i = 1, #KEYS do
  if i % 3 ~= 0 then
    local t = redis.call('TYPE', KEYS[i])['ok']
    if t ~= 'list' and t ~= 'none' then return {KEYS[i]} end
  end
end
local want = tonumber(ARGV[2])
local out = {''}
local got = 0
local nextID = 4
local registered = {}

local function take(i)
  local q, p = KEYS[3*i-2], KEYS[3*i-1]
  local e = redis.call('LMOVE', q, p, 'RIGHT', 'LEFT')
  if not e then return false end
  local new = nil
  if string.sub(e, 1, 6) == '{"sg":' then
    local n, rest = string.match(e, '^{"sg":1,"n":(%d+),(.*)$')
    if n and #n <= 15 then
      new = '{"sg":1,"n":' .. string.format('%d', tonumber(n) + 1) .. ',' .. rest
    end
  else
    new = '{"sg":1,"n":1,"id":"' .. ARGV[nextID] .. '","v":{"payload":' .. cjson.encode(e) .. '}}'
    nextID = nextID + 1
  end
  if new then
    redis.call('LSET', p, 0, new)
  else
    new = e
  end
  if not registered[i] then
    redis.call('SADD', KEYS[3*i], ARGV[1])
    registered[i] = true
  end
  got = got + 1
  out[#out+1] = i
  out[#out+1] = new
  return true
end

if ARGV[3] == '1' then
  for i = 2, k do
    if got < want then take(i) end
  end
end
for i = 1, k do
  while got < want and take(i) do end
end
return out
