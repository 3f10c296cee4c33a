-- Safe trimming for a streamgroup stream: XTRIM MINID with a floor that never
-- passes an entry some consumer group still needs.
--
-- KEYS[1]  the stream key (the only key: the script is Cluster-safe)
-- ARGV[1]  the caller's MINID floor, normalised "<ms>-<seq>", or "" for none
-- ARGV[2]  the caller's MAXLEN, or "0" for none (only one of the two is set)
-- ARGV[3]  "~" for approximate trimming, "=" for exact
--
-- Returns the number of entries removed. A missing key removes nothing; a key
-- of another type is a WRONGTYPE error.

local key = KEYS[1]
local ktype = redis.call('TYPE', key)['ok']
if ktype == 'none' then
  return 0
end
if ktype ~= 'stream' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end

-- IDs are pairs of uint64, beyond the precision of Lua numbers, so compare
-- them as digit strings: a longer number is larger, equal lengths compare
-- byte by byte. Redis never writes leading zeros.
local function cmp_digits(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y and -1 or 1
    end
  end
  return 0
end

local function cmp_id(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  local c = cmp_digits(ams, bms)
  if c ~= 0 then
    return c
  end
  return cmp_digits(aseq, bseq)
end

local MAX_ID = '18446744073709551615-18446744073709551615'

-- The safe floor: the smallest ID any group still needs. For each group that
-- is its oldest pending entry, or the first entry after its
-- last-delivered-id (not yet delivered), whichever is smaller. nil means no
-- group holds anything back.
local safe = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local name, pending, last
  for i = 1, #g, 2 do
    local f = g[i]
    if f == 'name' then
      name = g[i + 1]
    elseif f == 'pending' then
      pending = g[i + 1]
    elseif f == 'last-delivered-id' then
      last = g[i + 1]
    end
  end
  local need = nil
  if last ~= MAX_ID then
    local after = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
    if #after > 0 then
      need = after[1][1]
    end
  end
  if pending > 0 then
    local smallest = redis.call('XPENDING', key, name)[2]
    if smallest and (need == nil or cmp_id(smallest, need) < 0) then
      need = smallest
    end
  end
  if need and (safe == nil or cmp_id(need, safe) < 0) then
    safe = need
  end
end

-- The caller's floor: entries below it are to go.
local floor = nil
local maxlen = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  floor = ARGV[1]
elseif maxlen > 0 then
  local len = redis.call('XLEN', key)
  if len <= maxlen then
    return 0
  end
  -- The k-th oldest entry becomes the oldest one kept. Read whichever end of
  -- the stream is shorter, and from the old end read no further than the
  -- safe floor: if fewer than k entries lie below it, it binds anyway.
  local k = len - maxlen + 1
  if k <= maxlen then
    local upper = '+'
    if safe then
      upper = '(' .. safe
    end
    local r = redis.call('XRANGE', key, '-', upper, 'COUNT', k)
    if #r < k then
      floor = safe
    else
      floor = r[k][1]
    end
  else
    local r = redis.call('XREVRANGE', key, '+', '-', 'COUNT', maxlen)
    floor = r[#r][1]
  end
end
if floor == nil then
  return 0
end

if safe and cmp_id(safe, floor) < 0 then
  floor = safe
end
return redis.call('XTRIM', key, 'MINID', ARGV[3], floor)
