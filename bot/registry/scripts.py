"""Lua scripts of the registry: each write of a node, group or person is one atomic script.

Every script gets the registry key prefix (ending in "{reg}:") as ARGV[1] and derives the
other key names from it, so a write and all the per-ancestor indexes it maintains land in
one slot (see keys.py). KEYS[1] is the main hash, declared so a cluster client routes the call.
"""

from __future__ import annotations

# Walks parent pointers; returns codes root first, or nil for an unknown node or a cycle.
_ANCESTORS = """
local function ancestors(P, code)
  local out, cur = {}, code
  for _ = 1, 32 do
    if cur == '' then return out end
    local raw = redis.call('HGET', P .. 'nodes', cur)
    if not raw then return nil end
    table.insert(out, 1, cur)
    cur = cjson.decode(raw)['parent']
  end
  return nil
end
"""

PATH = _ANCESTORS + """
local P = ARGV[1]
local codes = ancestors(P, ARGV[2])
if not codes then return {} end
local out = {}
for i, c in ipairs(codes) do out[i] = redis.call('HGET', P .. 'nodes', c) end
return out
"""

# ARGV: prefix, code, node json, parent, name, level.
# Returns 0 unchanged, 1 written, 2 written and re-parented, -1 unknown parent, -2 cycle.
UPSERT_NODE = """
local P, code, json, parent, name, level = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HGET', P .. 'nodes', code)
if old == json then return 0 end
local cur = parent
for _ = 1, 33 do
  if cur == '' then break end
  if cur == code then return -2 end
  local raw = redis.call('HGET', P .. 'nodes', cur)
  if not raw then return -1 end
  cur = cjson.decode(raw)['parent']
end
if cur ~= '' then return -2 end
local moved = 0
if old then
  local o = cjson.decode(old)
  if o['parent'] ~= parent then
    redis.call('SREM', P .. 'kids:' .. o['parent'], code)
    moved = 1
  end
  redis.call('SREM', P .. 'name:' .. o['name'], code)
  redis.call('SREM', P .. 'level:' .. o['level'], code)
end
redis.call('HSET', P .. 'nodes', code, json)
redis.call('SADD', P .. 'kids:' .. parent, code)
redis.call('SADD', P .. 'name:' .. name, code)
redis.call('SADD', P .. 'level:' .. level, code)
if moved == 1 then return 2 end
return 1
"""

# ARGV: prefix, chat_id, content row (codec.py, without updated_at), kind, node, state, name,
#       members, now, actor, source, unplaced reason json, mode (any|absent|match), expected
#       stored row, the record as JSON (for a "created" history entry).
# The stored row is the content plus US and `now`; comparisons strip that last field again.
# Returns {status, what}: status 0 unchanged, 1 written, -1 unknown node, -2 conflict (the
# record is not what the caller read). `what` names the history entry written ('' for none).
UPSERT_GROUP = _ANCESTORS + r"""
local FIELDS = {'chat_id', 'name', 'kind', 'node', 'owner', 'member_count', 'state',
                'webhook_key', 'tags', 'dismissed_at'}
local NAME, KIND, NODE, MEMBERS, STATE = 2, 3, 4, 6, 7
local P, id, content = ARGV[1], ARGV[2], ARGV[3]
local kind, node, state, name = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local members = tonumber(ARGV[8])
local now, actor, source, reason, mode = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]

local function split(row)
  local t = {}
  for f in string.gmatch(row .. '\31', '([^\31]*)\31') do t[#t + 1] = f end
  return t
end

local old = redis.call('HGET', P .. 'groups', id)
if mode == 'match' and old ~= ARGV[14] then return {-2, ''} end
if mode == 'absent' and old then return {-2, ''} end
local oldcontent = old and string.match(old, '^(.*)\31[^\31]*$')

local anc = {}
if node ~= '' then
  anc = ancestors(P, node)
  if not anc then return {-1, ''} end
end
local ancstr = table.concat(anc, ',')
local oldanc = redis.call('HGET', P .. 'gmeta', id) or ''
local unplaced = state == 'active' and node == ''

if oldcontent == content and oldanc == ancstr then
  if unplaced and reason ~= '' then redis.call('HSET', P .. 'unplaced', id, reason) end
  return {0, ''}
end

local function name_index(gname, add)
  local ids = redis.call('HGET', P .. 'gname', gname) or ''
  local kept = {}
  for x in string.gmatch(ids, '%S+') do
    if x ~= id then table.insert(kept, x) end
  end
  if add then table.insert(kept, id) end
  if #kept == 0 then redis.call('HDEL', P .. 'gname', gname)
  else redis.call('HSET', P .. 'gname', gname, table.concat(kept, ' ')) end
end

local function count(code, k, groups, people)
  local key = P .. 'count:' .. code
  if redis.call('HINCRBY', key, k, groups) == 0 then redis.call('HDEL', key, k) end
  if redis.call('HINCRBY', key, 'm:' .. k, people) == 0 then redis.call('HDEL', key, 'm:' .. k) end
end

local o = nil
if old then
  o = split(old)
  local active = o[STATE] == 'active'
  local set = active and 'under:' or 'gone:'
  for a in string.gmatch(oldanc, '[^,]+') do
    redis.call('HDEL', P .. set .. a, id)
    if active then count(a, o[KIND], -1, 0 - tonumber(o[MEMBERS])) end  -- 0 - x: never "-0"
  end
  name_index(o[NAME], false)
end

local active = state == 'active'
local set = active and 'under:' or 'gone:'
for _, a in ipairs(anc) do
  redis.call('HSET', P .. set .. a, id, kind)
  if active then count(a, kind, 1, members) end
end
name_index(name, true)
if unplaced then
  if reason == '' then reason = '{}' end
  redis.call('HSET', P .. 'unplaced', id, reason)
else
  redis.call('HDEL', P .. 'unplaced', id)
end
redis.call('HSET', P .. 'groups', id, content .. '\31' .. now)
redis.call('HSET', P .. 'gmeta', id, ancstr)

if oldcontent == content then return {1, ''} end
local what, diff = 'created', ARGV[15]
if o then
  local n = split(content)
  local changes, structural = {}, false
  for i, field in ipairs(FIELDS) do
    if o[i] ~= n[i] then
      changes[field] = {from = o[i], to = n[i]}
      if field ~= 'member_count' then structural = true end
    end
  end
  if not structural then return {1, ''} end
  diff = cjson.encode(changes)
  if n[STATE] ~= o[STATE] then
    what = (n[STATE] == 'dismissed') and 'dismissed' or 'restored'
  elseif n[NODE] ~= o[NODE] then
    what = 'moved'
  else
    what = 'updated'
  end
end
local entry = cjson.encode({at = now, actor = actor, source = source, what = what})
redis.call('RPUSH', P .. 'hist:' .. id, string.sub(entry, 1, -2) .. ',"changes":' .. diff .. '}')
redis.call('LTRIM', P .. 'hist:' .. id, -1000, -1)
return {1, what}
"""

# Rows of the active groups under any of the include codes (and the dismissed ones when
# ARGV[2] is "1"), minus the groups under the exclude codes and the excluded chat ids, joined
# by newlines into ONE bulk reply: one reply instead of one per group keeps a 100,000-group
# read cheap for the client. ARGV: prefix, with dismissed, n include, codes…, n exclude,
# codes…, excluded chat ids…
GROUPS_UNDER = r"""
local P, gone = ARGV[1], ARGV[2] == '1'
local out = {}
local function fetch(ids, first, last)
  for start = first, last, 4000 do
    local stop = math.min(start + 3999, last)
    local values = redis.call('HMGET', P .. 'groups', unpack(ids, start, stop))
    for _, v in ipairs(values) do if v then out[#out + 1] = v end end
  end
end
if not gone and ARGV[3] == '1' and ARGV[5] == '0' and #ARGV == 5 then
  -- one subtree, nothing excluded (a whole-city or county notice): no set arithmetic
  local ids = redis.call('HKEYS', P .. 'under:' .. ARGV[4])
  fetch(ids, 1, #ids)
  return table.concat(out, '\n')
end
local wanted, i = {}, 3
local function collect(code, flag)
  for _, id in ipairs(redis.call('HKEYS', P .. 'under:' .. code)) do wanted[id] = flag end
  if gone then
    for _, id in ipairs(redis.call('HKEYS', P .. 'gone:' .. code)) do wanted[id] = flag end
  end
end
for _ = 1, tonumber(ARGV[i]) do i = i + 1; collect(ARGV[i], true) end
i = i + 1
for _ = 1, tonumber(ARGV[i]) do i = i + 1; collect(ARGV[i], nil) end
for j = i + 1, #ARGV do wanted[ARGV[j]] = nil end
local ids = {}
for id in pairs(wanted) do ids[#ids + 1] = id end
fetch(ids, 1, #ids)
return table.concat(out, '\n')
"""

# ARGV: prefix, userid, person json, role, covered nodes joined by ','.
# Returns 0 unchanged, 1 written, -1 a covered node is unknown.
UPSERT_PERSON = """
local P, uid, json, role, nodes = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for n in string.gmatch(nodes, '[^,]+') do
  if redis.call('HEXISTS', P .. 'nodes', n) == 0 then return -1 end
end
local old = redis.call('HGET', P .. 'people', uid)
if old == json then return 0 end
if old then
  local o = cjson.decode(old)
  for _, n in ipairs(o['nodes']) do redis.call('SREM', P .. 'staff:' .. n, uid) end
  redis.call('SREM', P .. 'role:' .. o['role'], uid)
end
for n in string.gmatch(nodes, '[^,]+') do redis.call('SADD', P .. 'staff:' .. n, uid) end
redis.call('SADD', P .. 'role:' .. role, uid)
redis.call('HSET', P .. 'people', uid, json)
return 1
"""
