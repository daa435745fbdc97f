#include "storage/redis/detail/scripts.h"

#include "common/log.h"
#include "storage/redis/redis_error.h"

namespace herald::storage::redis_detail {
namespace {

// Helpers every script starts with. Values are described in value_codec.h. Numbers: Lua 5.1
// has doubles only, exact to 2^53; seqs and times stay far below, epochs (microseconds since
// 1970) too. Numbers are turned into text with '%.0f', never tostring (which switches to
// exponent form beyond 14 digits). Cursor seqs are compared as decimal strings.
constexpr std::string_view kPrelude = R"lua(
local P = KEYS[1]
local function s(n) return string.format('%.0f', n) end
-- kind and expires_at_ms of a stored entry; nil when the header is not one
local function entry_head(v)
  if type(v) ~= 'string' or #v < 38 or string.byte(v, 1) ~= 1 then return nil end
  local kind, exp = struct.unpack('>Bi8', v, 2)
  if kind > 3 then return nil end
  return kind, exp
end
-- the five fields of a stored entry (app, message_id, data, audience, collapse_key); nil when
-- they do not fill the value exactly
local function entry_fields(v)
  local f, p = {}, 19
  for i = 1, 5 do
    if p + 3 > #v then return nil end
    local n = struct.unpack('>I4', v, p)
    local e = p + 3 + n
    if e > #v then return nil end
    f[i] = string.sub(v, p + 4, e)
    p = e + 1
  end
  if p ~= #v + 1 then return nil end
  return f
end
local function valid_entry(v)
  return entry_head(v) ~= nil and entry_fields(v) ~= nil
end
-- expires_at_ms of a stored record; nil when it is not one
local function record_expiry(v)
  if type(v) ~= 'string' or #v < 9 or string.byte(v, 1) ~= 1 then return nil end
  return (struct.unpack('>i8', v, 2))
end
local function seq_ge(a, b)
  if #a ~= #b then return #a > #b end
  return a >= b
end
)lua";

constexpr std::string_view kAppend = R"lua(
local now = tonumber(ARGV[1])
local unless = ARGV[2]
local grace = tonumber(ARGV[3])
local nt, ne, nd, np, na =
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local t0 = 9
local e0 = t0 + 3 * nt
local d0 = e0 + 3 * ne
local p0 = d0 + nd
local a0 = p0 + 3 * np

-- 1. The precondition.
if unless ~= '' then
  local v = redis.call('GET', P .. 'r:' .. unless)
  if v then
    local exp = record_expiry(v)
    if exp == nil then return redis.error_reply('HERALD_CORRUPT_META record') end
    if exp == 0 or exp > now then return {1, v} end
  end
end

-- Reads and checks what the batch builds on, before any write.
-- The replication id of this master changes when a replica is promoted (it may lack writes the
-- old master acknowledged) and when the master restarts: a stream last written under another id
-- gets a new epoch at its next append, so a seq lost that way is never reused silently.
local replid = ''
if ne > 0 then
  replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
end
local metas = {}
for i = 0, ne - 1 do
  local stream = ARGV[e0 + 3 * i]
  if not metas[stream] then
    local r = redis.call('HMGET', P .. 'm:' .. stream, 'e', 'h', 'l', 'x', 'r')
    local m
    if r[1] then
      m = {e = r[1], h = tonumber(r[2]), l = tonumber(r[3]), x = tonumber(r[4]), r = r[5]}
      if not (m.h and m.l and m.x and string.match(m.e, '^%d+$')) then
        return redis.error_reply('HERALD_CORRUPT_META stream meta')
      end
    else
      m = {h = 0, l = 1, x = 0}
    end
    metas[stream] = m
  end
end
for i = 0, nt - 1 do
  local v = redis.call('HGET', P .. 'e:' .. ARGV[t0 + 3 * i], ARGV[t0 + 3 * i + 1])
  if v and not valid_entry(v) then return redis.error_reply('HERALD_CORRUPT_RECORD entry') end
end
for i = 0, ne - 1 do
  local stream, ck = ARGV[e0 + 3 * i], ARGV[e0 + 3 * i + 1]
  if ck ~= '' then
    local seq = redis.call('HGET', P .. 'c:' .. stream, ck)
    if seq then
      local v = redis.call('HGET', P .. 'e:' .. stream, seq)
      if v and not valid_entry(v) then
        return redis.error_reply('HERALD_CORRUPT_RECORD entry')
      end
    end
  end
end
for i = 0, na - 1 do
  local v = redis.call('HGET', P .. 'k:' .. ARGV[a0 + 5 * i], ARGV[a0 + 5 * i + 1])
  if v and not string.match(v, '^%d+ %d+ %-?%d+$') then
    return redis.error_reply('HERALD_CORRUPT_META acked cursor')
  end
end

-- From here on nothing fails.
local function tombstone(stream, seq, mid)
  local ek = P .. 'e:' .. stream
  local v = redis.call('HGET', ek, seq)
  if not v then return false end
  local kind, exp = entry_head(v)
  if kind == nil or kind == 2 or exp <= now then return false end
  local f = entry_fields(v)
  if not f or (mid and f[2] ~= mid) then return false end
  redis.call('HSET', ek, seq, string.char(1, 2) .. string.sub(v, 3, 18) ..
    struct.pack('>I4', #f[1]) .. f[1] .. struct.pack('>I4', #f[2]) .. f[2] ..
    struct.pack('>I4I4I4', 0, 0, #f[5]) .. f[5])
  return true
end

local out = {0}
local flags = {}
-- 2. Tombstones.
for i = 0, nt - 1 do
  local b = t0 + 3 * i
  flags[#flags + 1] = tombstone(ARGV[b], ARGV[b + 1], ARGV[b + 2]) and 1 or 0
end
-- 3. Entries. A new stream's epoch is the server's clock in microseconds: a stream recreated
-- after its keys expired never gets an epoch a reader saw before. A stream last written under
-- another replication id keeps its seqs under a new epoch (readers resynchronise).
for i = 0, ne - 1 do
  local b = e0 + 3 * i
  local stream, ck, v = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local m = metas[stream]
  if not m.e or m.r ~= replid then
    local t = redis.call('TIME')
    local e = t[1] .. string.format('%06d', tonumber(t[2]))
    -- Another master's clock may run behind: never go back to an epoch seen before.
    if m.e and seq_ge(m.e, e) then e = s(tonumber(m.e) + 1) end
    m.e = e
    m.r = replid
  end
  m.h = m.h + 1
  m.dirty = true
  local seq = s(m.h)
  local collapsed = 0
  if ck ~= '' then
    local ckey = P .. 'c:' .. stream
    local prev = redis.call('HGET', ckey, ck)
    if prev and tombstone(stream, prev, nil) then collapsed = tonumber(prev) end
    redis.call('HSET', ckey, ck, seq)
  end
  redis.call('HSET', P .. 'e:' .. stream, seq, v)
  local _, exp = entry_head(v)
  if exp > m.x then m.x = exp end
  out[#out + 1] = m.e
  out[#out + 1] = m.h
  out[#out + 1] = collapsed
end
-- 4. Records: deletes, then puts.
for i = 0, nd - 1 do
  local k = ARGV[d0 + i]
  redis.call('DEL', P .. 'r:' .. k)
  redis.call('ZREM', P .. 'ri', k)
  redis.call('ZREM', P .. 'rx', k)
end
for i = 0, np - 1 do
  local b = p0 + 3 * i
  local rk = P .. 'r:' .. ARGV[b]
  redis.call('SET', rk, ARGV[b + 2])
  redis.call('ZADD', P .. 'ri', 0, ARGV[b])
  if ARGV[b + 1] ~= '0' then
    redis.call('PEXPIREAT', rk, ARGV[b + 1])
    redis.call('ZADD', P .. 'rx', ARGV[b + 1], ARGV[b])
  else
    redis.call('ZREM', P .. 'rx', ARGV[b])
  end
end
-- 5. Acked cursors, forward only within an epoch.
for i = 0, na - 1 do
  local b = a0 + 5 * i
  local kk, stream, epoch, seq = P .. 'k:' .. ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local cur = redis.call('HGET', kk, stream)
  local keep = false
  if cur then
    local ce, cs = string.match(cur, '^(%d+) (%d+) ')
    keep = ce == epoch and seq_ge(cs, seq)
  end
  if not keep then redis.call('HSET', kk, stream, epoch .. ' ' .. seq .. ' ' .. ARGV[b + 4]) end
end
-- Each stream appended to: trim expired entries from its low end (a bounded number per call,
-- expired by the caller's clock and by the server's, so a caller's clock running ahead never
-- drops a live entry), store the meta, and let its keys expire with its latest entry.
local t = redis.call('TIME')
local floor_server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor = floor_server
if now < floor then floor = now end
for stream, m in pairs(metas) do
  if m.dirty then
    local ek, ckey = P .. 'e:' .. stream, P .. 'c:' .. stream
    local budget = 16
    while budget > 0 and m.l <= m.h do
      local seq = s(m.l)
      local v = redis.call('HGET', ek, seq)
      if v then
        local kind, exp = entry_head(v)
        local f = kind and entry_fields(v)
        if not f or exp > floor then break end
        if f[5] ~= '' and redis.call('HGET', ckey, f[5]) == seq then
          redis.call('HDEL', ckey, f[5])
        end
        redis.call('HDEL', ek, seq)
      end
      m.l = m.l + 1
      budget = budget - 1
    end
    local mk = P .. 'm:' .. stream
    redis.call('HSET', mk, 'e', m.e, 'h', s(m.h), 'l', s(m.l), 'x', s(m.x), 'r', m.r)
    local at = m.x + grace
    if at > 1e15 then at = 1e15 end
    if at < 1 then at = 1 end
    at = s(at)
    redis.call('PEXPIREAT', mk, at)
    redis.call('PEXPIREAT', ek, at)
    redis.call('PEXPIREAT', ckey, at)
  end
end
-- Index members of records Redis has dropped by now (rx: scored by when it drops them), a
-- bounded number per call, at least twice as many as this batch can add: the index never grows
-- with records nobody scans (idempotency keys).
local gone = redis.call('ZRANGEBYSCORE', P .. 'rx', '-inf', s(floor_server), 'LIMIT', 0, 2 * np + 8)
for _, k in ipairs(gone) do
  redis.call('DEL', P .. 'r:' .. k)
  redis.call('ZREM', P .. 'ri', k)
  redis.call('ZREM', P .. 'rx', k)
end
for i = 1, #flags do out[#out + 1] = flags[i] end
return out
)lua";

constexpr std::string_view kRead = R"lua(
local stream, req_epoch = ARGV[1], ARGV[2]
local after = tonumber(ARGV[3])
local max_entries, max_bytes, now = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local r = redis.call('HMGET', P .. 'm:' .. stream, 'e', 'h', 'l')
local epoch, head, low = '0', 0, 1
if r[1] then
  epoch, head, low = r[1], tonumber(r[2]), tonumber(r[3])
  if not (head and low) then return redis.error_reply('HERALD_CORRUPT_META stream meta') end
end
local changed = req_epoch ~= '0' and req_epoch ~= epoch
if changed then after = 0 end
if after >= head then return {epoch, head, changed and 1 or 0, 0, 0, 0} end
local ek = P .. 'e:' .. stream
local out = {epoch, head, changed and 1 or 0, 0, 0, 0}
local first, last, count, bytes, more = 0, 0, 0, 0, 0
local seq = after + 1
if low > seq then seq = low end
-- At most this many seqs are looked at per call: a long run of expired entries is reported as
-- truncated (with more) rather than walked in one go.
local budget = 1024
local done = false
while seq <= head and not done do
  if budget <= 0 then more = 1 break end
  local n = head - seq + 1
  if n > 64 then n = 64 end
  if n > budget then n = budget end
  local fields = {}
  for j = 1, n do fields[j] = s(seq + j - 1) end
  local vs = redis.call('HMGET', ek, unpack(fields))
  for j = 1, n do
    local v = vs[j]
    local cur = seq + j - 1
    if v then
      local kind, exp = entry_head(v)
      local f = kind and entry_fields(v)
      if not f then return redis.error_reply('HERALD_CORRUPT_RECORD entry ' .. s(cur)) end
      if exp > now then
        -- One run of consecutive seqs: a live entry after a hole ends the answer.
        if (first ~= 0 and cur ~= last + 1) or count >= max_entries or
           (first ~= 0 and bytes + #f[3] > max_bytes) then
          more = 1
          done = true
          break
        end
        bytes = bytes + #f[3]
        if first == 0 then first = cur end
        last = cur
        count = count + 1
        out[#out + 1] = v
      end
    end
  end
  if not done then
    seq = seq + n
    budget = budget - n
  end
end
if first == 0 then
  if more == 1 then out[4] = seq else out[4] = head + 1 end
elseif first > after + 1 then
  out[4] = first
end
out[5] = more
out[6] = first
return out
)lua";

constexpr std::string_view kScan = R"lua(
local lo, hi = ARGV[1], ARGV[2]
local limit, now, budget = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local idx = P .. 'ri'
local out = {''}
local found = 0
while budget > 0 do
  local want = budget
  if want > 128 then want = 128 end
  local keys = redis.call('ZRANGEBYLEX', idx, lo, hi, 'LIMIT', 0, want)
  if #keys == 0 then return out end
  for _, k in ipairs(keys) do
    budget = budget - 1
    lo = '(' .. k
    local v = redis.call('GET', P .. 'r:' .. k)
    if not v then
      redis.call('ZREM', idx, k)
      redis.call('ZREM', P .. 'rx', k)
    else
      local exp = record_expiry(v)
      if exp == nil then return redis.error_reply('HERALD_CORRUPT_META record') end
      if exp == 0 or exp > now then
        out[#out + 1] = k
        out[#out + 1] = v
        found = found + 1
        if found >= limit then
          out[1] = lo
          return out
        end
      end
    end
  end
  if #keys < want then return out end
end
out[1] = lo
return out
)lua";

constexpr std::string_view kRegister = R"lua(
local app, device = ARGV[1], ARGV[2]
if redis.call('HSETNX', P .. 'rt:' .. app, device, ARGV[3]) == 0 then return 0 end
redis.call('ZADD', P .. 'ad:' .. app, 0, device)
redis.call('ZADD', P .. 'da:' .. device, 0, app)
return 1
)lua";

constexpr std::string_view kUnregister = R"lua(
local app, device = ARGV[1], ARGV[2]
if redis.call('HDEL', P .. 'rt:' .. app, device) == 0 then return 0 end
redis.call('ZREM', P .. 'ad:' .. app, device)
redis.call('ZREM', P .. 'da:' .. device, app)
return 1
)lua";

constexpr std::string_view kSaveAck = R"lua(
local kk, stream, epoch, seq = P .. 'k:' .. ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HGET', kk, stream)
if cur then
  local ce, cs = string.match(cur, '^(%d+) (%d+) %-?%d+$')
  if not ce then return redis.error_reply('HERALD_CORRUPT_META acked cursor') end
  if ce == epoch and seq_ge(cs, seq) then return 0 end
end
redis.call('HSET', kk, stream, epoch .. ' ' .. seq .. ' ' .. ARGV[5])
return 1
)lua";

// The prelude and the body as one source.
std::string with_prelude(std::string_view body) {
  std::string source(kPrelude);
  source.append(body);
  return source;
}

}  // namespace

Scripts::Scripts()
    : append{"append", with_prelude(kAppend), {}},
      read{"read", with_prelude(kRead), {}},
      scan{"scan", with_prelude(kScan), {}},
      register_device{"register_device", with_prelude(kRegister), {}},
      unregister_device{"unregister_device", with_prelude(kUnregister), {}},
      save_ack{"save_ack", with_prelude(kSaveAck), {}} {}

boost::system::error_code load_scripts(RedisClusterClient& client, const RedisEndpoint& master,
                                       Scripts& scripts) {
  for (Script* script : scripts.all()) {
    auto reply = client.call_at(master, {"SCRIPT", "LOAD", script->source});
    if (!reply) return reply.error();
    if (reply->is_error()) {
      log::error("redis_script_load_failed",
                 {{"script", script->name}, {"addr", master.text()}, {"error", reply->text}});
      return make_error_code(RedisError::kErrorReply);
    }
    if (reply->type != RedisValue::Type::kString || reply->text.size() != 40) {
      return make_error_code(RedisError::kUnexpectedReply);
    }
    script->sha1 = reply->text;
  }
  return {};
}

RedisCommand evalsha(const Script& script, std::string_view key, std::vector<std::string> args) {
  RedisCommand command;
  command.reserve(args.size() + 4);
  command.emplace_back("EVALSHA");
  command.push_back(script.sha1);
  command.emplace_back("1");
  command.emplace_back(key);
  for (auto& arg : args) command.push_back(std::move(arg));
  return command;
}

RedisCommand eval(const Script& script, RedisCommand evalsha_command) {
  evalsha_command[0] = "EVAL";
  evalsha_command[1] = script.source;
  return evalsha_command;
}

bool is_noscript(const RedisValue& reply) {
  return reply.is_error() && reply.text.starts_with("NOSCRIPT");
}

boost::system::result<RedisValue> run_script(RedisClusterClient& client, const Script& script,
                                             std::string_view key, std::vector<std::string> args) {
  RedisCommand command = evalsha(script, key, std::move(args));
  auto reply = client.call(key, command);
  if (reply && is_noscript(*reply)) reply = client.call(key, eval(script, std::move(command)));
  if (!reply) return reply.error();
  if (reply->is_error()) return reply_error(*reply);
  return reply;
}

boost::system::error_code reply_error(const RedisValue& reply) {
  const std::string_view text = reply.text;
  // A script's own error comes back prefixed by Redis ("ERR user_script:... HERALD_..." in some
  // versions, bare in others): look for the marker anywhere.
  if (text.find("HERALD_CORRUPT_RECORD") != std::string_view::npos) {
    log::error("storage_corrupt_record", {{"error", text}});
    return make_error_code(RedisError::kCorruptRecord);
  }
  if (text.find("HERALD_CORRUPT_META") != std::string_view::npos) {
    log::error("storage_corrupt_meta", {{"error", text}});
    return make_error_code(RedisError::kCorruptMeta);
  }
  if (text.starts_with("OOM")) {
    log::warn("redis_out_of_memory", {{"error", text}});
    return make_error_code(RedisError::kOutOfMemory);
  }
  log::error("redis_error_reply", {{"error", text}});
  return make_error_code(RedisError::kErrorReply);
}

}  // namespace herald::storage::redis_detail
