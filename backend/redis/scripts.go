package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts below run atomically on the server (one per key, so they
// work on Redis Cluster too). They share this prologue: MAGIC is the stored
// header's magic; ECHO is the call's echo, its last argument (8 random
// bytes drawn for the call), which every reply starts with, so that a
// reply is matched to its call (RESP has no request id: see owners.go);
// reply(...) builds a reply, {ECHO, ...}; and foreign(v) builds the reply
// for a value without the header: {ECHO, -1, first bytes, length}. The
// replies below are given without ECHO.
const luaPrologue = `
local MAGIC = '\254M\001'
local ECHO = ARGV[#ARGV]
local function reply(...)
  return {ECHO, ...}
end
local function foreign(v)
  return reply(-1, string.sub(v, 1, 16), #v)
end
`

// casScript: KEYS[1] the key; ARGV[1] the expected 8-byte token; ARGV[2]
// the new stored string (header included); ARGV[3] the TTL in
// milliseconds, "0" for none; ARGV[4] the echo. Replies {1} stored, {0}
// missing, {-2} conflict, or foreign(v).
var casScript = goredis.NewScript(luaPrologue + `
local v = redis.call('GET', KEYS[1])
if not v then return reply(0) end
if #v < 11 or string.sub(v, 1, 3) ~= MAGIC then return foreign(v) end
if string.sub(v, 4, 11) ~= ARGV[1] then return reply(-2) end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return reply(1)
`)

// touchScript: KEYS[1] the key; ARGV[1] the new 8-byte token; ARGV[2] the
// TTL in milliseconds, "0" for none; ARGV[3] the echo (the new token). The token is rewritten in place
// (SETRANGE), so the value is not copied. Replies {1} done, {0} missing, or
// foreign(v).
var touchScript = goredis.NewScript(luaPrologue + `
local h = redis.call('GETRANGE', KEYS[1], 0, 10)
if h == '' and redis.call('EXISTS', KEYS[1]) == 0 then return reply(0) end
if #h < 11 or string.sub(h, 1, 3) ~= MAGIC then return foreign(h) end
redis.call('SETRANGE', KEYS[1], 3, ARGV[1])
if ARGV[2] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return reply(1)
`)

// incrScript: KEYS[1] the key; ARGV[1] "+" or "-"; ARGV[2] the delta's
// magnitude in decimal; ARGV[3] the new 8-byte token. Redis's Lua numbers
// are doubles, so the unsigned 64-bit arithmetic is done on decimal
// strings: an increment wraps at 2^64, a decrement stops at 0, as in
// memcached. The TTL is kept (KEEPTTL). Replies {1, new value} done, {0}
// missing, {-3} not a decimal number, or foreign(v).
var incrScript = goredis.NewScript(luaPrologue + `
local TWO64 = '18446744073709551616'
local function strip(s)
  local t = string.gsub(s, '^0+', '')
  if t == '' then return '0' end
  return t
end
local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function add(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then s = s + string.byte(a, i) - 48 end
    if j > 0 then s = s + string.byte(b, j) - 48 end
    out[#out + 1] = string.char(48 + s % 10)
    carry = math.floor(s / 10)
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(out)))
end
local function sub(a, b) -- a >= b
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local s = string.byte(a, i) - 48 - borrow
    if j > 0 then s = s - (string.byte(b, j) - 48) end
    if s < 0 then s, borrow = s + 10, 1 else borrow = 0 end
    out[#out + 1] = string.char(48 + s)
    i, j = i - 1, j - 1
  end
  return strip(string.reverse(table.concat(out)))
end
local v = redis.call('GET', KEYS[1])
if not v then return reply(0) end
if #v < 11 or string.sub(v, 1, 3) ~= MAGIC then return foreign(v) end
local n = string.sub(v, 12)
if #n == 0 or not string.find(n, '^%d+$') then return reply(-3) end
n = strip(n)
if cmp(n, TWO64) >= 0 then return reply(-3) end
local d = strip(ARGV[2])
local r
if ARGV[1] == '-' then
  if cmp(n, d) <= 0 then r = '0' else r = sub(n, d) end
else
  r = add(n, d)
  if cmp(r, TWO64) >= 0 then r = sub(r, TWO64) end
end
redis.call('SET', KEYS[1], MAGIC .. ARGV[3] .. r, 'KEEPTTL')
return reply(1, r)
`)

// unlockScript: KEYS[1] the lock key; ARGV[1] the token; ARGV[2] the
// echo. It deletes the key
// if it holds the token, written by TryLock (after the header, whose CAS
// token is the write's own), and leaves it alone otherwise: expired and
// retaken by another token, or a value TryLock did not write. Replies {1}
// deleted, {0} left.
var unlockScript = goredis.NewScript(luaPrologue + `
local v = redis.call('GET', KEYS[1])
if v and #v >= 11 and string.sub(v, 1, 3) == MAGIC and string.sub(v, 12) == ARGV[1] then
  return reply(redis.call('DEL', KEYS[1]))
end
return reply(0)
`)

// getTTLScript: KEYS[1] the key; ARGV[1] the echo. Replies {1, the stored
// string, its PTTL} (PTTL -1: no expiry), {0} missing, or foreign(v).
var getTTLScript = goredis.NewScript(luaPrologue + `
local v = redis.call('GET', KEYS[1])
if not v then return reply(0) end
if #v < 11 or string.sub(v, 1, 3) ~= MAGIC then return foreign(v) end
return reply(1, v, redis.call('PTTL', KEYS[1]))
`)

// scriptReplies gives, for each script, the replies it answers (without
// the echo): for each code, the types of the elements after it, 's' a
// string and 'i' an integer. foreign(v)'s {-1, first bytes, length} is
// "si" under -1.
var scriptReplies = map[*goredis.Script]map[int64]string{
	casScript:    {1: "", 0: "", -2: "", -1: "si"},
	touchScript:  {1: "", 0: "", -1: "si"},
	incrScript:   {1: "s", 0: "", -3: "", -1: "si"},
	unlockScript: {1: "", 0: ""},
	getTTLScript: {1: "si", 0: "", -1: "si"},
}

// scriptReplyFault describes how res, the reply of script s without its
// echo (res[0] is its integer code), is not one of the replies s answers
// (scriptReplies), or returns "". The lane checks every script reply with
// it (call.badReply), so that the callers read the elements their code
// promises without a reply that lacks them crashing the process.
func scriptReplyFault(s *goredis.Script, res []any) string {
	codes, ok := scriptReplies[s]
	if !ok || len(res) == 0 {
		return ""
	}
	code, _ := res[0].(int64)
	kinds, ok := codes[code]
	switch {
	case !ok:
		return fmt.Sprintf("a script answered code %d, which it never answers", code)
	case len(res)-1 != len(kinds):
		return fmt.Sprintf("a script answered code %d with %d more elements, not %d", code, len(res)-1, len(kinds))
	}
	for i, k := range []byte(kinds) {
		v := res[1+i]
		switch _, isStr := v.(string); {
		case k == 's' && !isStr:
			return fmt.Sprintf("a script answered code %d with element %d of type %T, not a string", code, 1+i, v)
		case k == 'i':
			if _, isInt := v.(int64); !isInt {
				return fmt.Sprintf("a script answered code %d with element %d of type %T, not an integer", code, 1+i, v)
			}
		}
	}
	return ""
}
