package streamsrc

import (
	"fmt"

	"github.com/streamgroup/streamgroup/internal/script"
)

// Every script touches the stream key only (the dead-letter script also the
// dead-letter key), so they work on Redis Cluster when both keys share a hash
// tag.

// releaseScript gives back entries this consumer holds but no handler
// runs: for each {id, count} it still owns, XCLAIM JUSTID sets the delivery
// counter to count (for an entry fetched and never started, the value
// before that fetch, so the unused fetch does not count toward
// MaxDeliveries) and the idle time to ARGV[3] ms (MinIdle), so that any
// consumer may claim it at once. With a second key, the released IDs are
// then announced there (XADD, the stream trimmed to about 1000 entries),
// with the handler time ARGV[4] (ns) this consumer measured: a consumer
// waiting for work reads the announcement and takes them (see takeScript)
// without waiting for its next reclaim pass. It returns how many entries
// it released. ARGV: group, consumer, MinIdle ms, handler time, then
// {id, count} pairs.
var releaseScript = script.New("release", []string{"XPENDING", "XCLAIM", "XADD"}, `
local ids = {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[i+1], 'JUSTID')
    ids[#ids+1] = id
  end
end
if KEYS[2] and #ids > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'ids', table.concat(ids, ' '), 'h', ARGV[4])
end
return #ids
`)

// takeScript takes released entries announced on KEYS[2] (see
// releaseScript) for this consumer: XCLAIM with MinIdle claims each one no
// other consumer took meanwhile, counting a delivery, up to ARGV[4]
// entries; the IDs beyond that are announced again (with the handler time
// ARGV[6]); the announcement ARGV[5] is acknowledged. Reply: a list of
// {id, fields, deliveries}. ARGV: group, consumer, MinIdle ms, most,
// announcement ID, handler time, then the IDs.
var takeScript = script.New("take released", []string{"XCLAIM", "XPENDING", "XADD", "XACK"}, `
local out, rest = {}, {}
local most = tonumber(ARGV[4])
for i = 7, #ARGV do
  local id = ARGV[i]
  if #out < most then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
    if c[1] and c[1][2] then
      local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
      if p[1] then out[#out+1] = {c[1][1], c[1][2], p[1][4]} end
    end
  else
    rest[#rest+1] = id
  end
end
if #rest > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'ids', table.concat(rest, ' '), 'h', ARGV[6])
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[5])
return out
`)

// retryScript re-delivers entries this consumer still owns (XCLAIM without
// JUSTID, which bumps the delivery counter). An entry another consumer has
// taken meanwhile is left alone. Reply: a list of {id, fields, deliveries};
// deliveries is -1 for an entry deleted from the stream.
var retryScript = script.New("retry", []string{"XPENDING", "XCLAIM", "XACK"}, `
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] and p[1][2] == ARGV[2] then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    if c[1] then
      out[#out+1] = {c[1][1], c[1][2], p[1][4] + 1}
    else
      redis.call('XACK', KEYS[1], ARGV[1], id)
      out[#out+1] = {id, {}, -1}
    end
  end
end
return out
`)

// renewScript extends the lease of entries this consumer owns: XCLAIM JUSTID
// resets their idle time without counting a delivery. It returns the IDs this
// consumer no longer owns (acknowledged, or taken by another consumer).
var renewScript = script.New("renew", []string{"XPENDING", "XCLAIM"}, `
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  else
    lost[#lost+1] = id
  end
end
return lost
`)

// deadLetterScript moves one entry to the dead-letter stream: XADD to
// KEYS[2], then XACK on KEYS[1]. A failing XADD aborts the script before the
// XACK, so the entry is never acknowledged without its dead letter. It does
// nothing (returns false) when this consumer no longer owns the entry.
//
// The dead letter starts with the entry's own field list, read with XRANGE,
// so it is copied intact: in order, and with a field name the entry repeats
// (XADD s * a 1 a 2) kept twice, which a Message's map cannot hold. Only
// when the entry is gone from the stream are the message's fields used.
// ARGV: group, consumer, id, n, then n values (the message's field/value
// pairs), then the dead-letter field/value pairs.
var deadLetterScript = script.New("dead-letter", []string{"XPENDING", "XRANGE", "XADD", "XACK"}, `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not p[1] or p[1][2] ~= ARGV[2] then return false end
local n = tonumber(ARGV[4])
local args = {}
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if e[1] and e[1][2] then
  for _, v in ipairs(e[1][2]) do args[#args+1] = v end
else
  for i = 5, 4 + n do args[#args+1] = ARGV[i] end
end
for i = 5 + n, #ARGV do args[#args+1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], '*', unpack(args))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return id
`)

// scriptEntry is one entry of a script reply: {id, {f1, v1, ...}}.
func parseEntry(v any) (id string, values map[string]string, ok bool, err error) {
	arr, isArr := v.([]any)
	if !isArr || len(arr) < 2 {
		if v == nil {
			return "", nil, false, nil // tombstone of an older Redis
		}
		return "", nil, false, fmt.Errorf("group: unexpected entry %T in script reply", v)
	}
	id, _ = arr[0].(string)
	fields, _ := arr[1].([]any)
	if fields == nil {
		return id, nil, false, nil
	}
	values = make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		val, _ := fields[i+1].(string)
		values[k] = val
	}
	return id, values, true, nil
}
