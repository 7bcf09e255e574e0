"""Lua scripts of the registry: each write of a node, group or person is one atomic script.

Every script gets the registry key prefix (ending in "{reg}:") as ARGV[1] and derives the
other key names from it, so a write and all the per-ancestor indexes it maintains land in
one slot (see keys.py). KEYS[1] is the main hash, declared so a cluster client routes the call.
"""

from __future__ import annotations

# Walks parent pointers. Returns the codes root first and the index of the group's "pack
# node" among them (the deepest 市/县区/乡镇/村社区 on the path), or nil for an unknown node
# or a cycle.
_ANCESTORS = r"""
local PACK_LEVELS = {city = true, county = true, township = true, village = true}
local function ancestors(P, code)
  local out, levels, cur = {}, {}, code
  for _ = 1, 32 do
    if cur == '' then break end
    local raw = redis.call('HGET', P .. 'nodes', cur)
    if not raw then return nil end
    local node = cjson.decode(raw)
    table.insert(out, 1, cur)
    table.insert(levels, 1, node['level'])
    cur = node['parent']
  end
  if cur ~= '' then return nil end
  local pack = #out
  for i = #levels, 1, -1 do
    if PACK_LEVELS[levels[i]] then pack = i; break end
  end
  return out, pack
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
# Returns 0 unchanged, 1 written, 2 written with a new parent or level (the caller re-indexes
# the groups below), -1 unknown parent, -2 cycle.
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
  if o['parent'] ~= parent then redis.call('SREM', P .. 'kids:' .. o['parent'], code) end
  -- a new parent or level can change the path and the pack of the groups below
  if o['parent'] ~= parent or o['level'] ~= level then moved = 1 end
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
#       stored row.
# The stored row is the content plus US and `now`; comparisons strip that last field again.
# Indexes kept here (keys.py): the row also sits in its pack (`pack:`/`gpack:` + pack node,
# rows joined by newlines), every ancestor of the pack node refcounts it in `packs:`/`gpacks:`,
# every ancestor of the group counts it per kind in `count:`, and `gmeta` remembers where it
# was indexed ("pack index|codes") so the next write can undo exactly that.
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

local function split(row, sep)
  local t = {}
  for f in string.gmatch(row .. sep, '([^' .. sep .. ']*)' .. sep) do t[#t + 1] = f end
  return t
end

local old = redis.call('HGET', P .. 'groups', id)
if mode == 'match' and old ~= ARGV[14] then return {-2, ''} end
if mode == 'absent' and old then return {-2, ''} end
local oldcontent = old and string.match(old, '^(.*)\31[^\31]*$')

local anc, packidx = {}, 0
if node ~= '' then
  anc, packidx = ancestors(P, node)
  if not anc then return {-1, ''} end
end
local meta = packidx .. '|' .. table.concat(anc, ',')
local oldmeta = redis.call('HGET', P .. 'gmeta', id) or '0|'
local unplaced = state == 'active' and node == ''

if oldcontent == content and oldmeta == meta then
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

local function bump(key, field, delta)  -- %d: a Lua -0 would be sent as "-0"
  if redis.call('HINCRBY', key, field, string.format('%d', delta)) == 0 then
    redis.call('HDEL', key, field)
  end
end

local function pack_drop(key)
  local pack = redis.call('GET', key)
  if not pack then return end
  local hay = '\n' .. pack .. '\n'
  local s = string.find(hay, '\n' .. id .. '\31', 1, true)
  if not s then return end
  local e = string.find(hay, '\n', s + 1, true)
  local rest = string.sub(string.sub(hay, 1, s - 1) .. string.sub(hay, e), 2, -2)
  if rest == '' then redis.call('DEL', key) else redis.call('SET', key, rest) end
end

local function pack_add(key, row)
  if redis.call('STRLEN', key) == 0 then redis.call('SET', key, row)
  else redis.call('APPEND', key, '\n' .. row) end
end

-- (un)index: delta -1 removes a record indexed at codes/packidx, +1 adds one
local function index(codes, pidx, k, people, active, row, delta)
  if #codes == 0 then return end
  local packnode = codes[pidx]
  local prefix = active and '' or 'g'
  for i = 1, pidx do bump(P .. prefix .. 'packs:' .. codes[i], packnode, delta) end
  if delta < 0 then pack_drop(P .. prefix .. 'pack:' .. packnode)
  else pack_add(P .. prefix .. 'pack:' .. packnode, row) end
  if active then
    for _, a in ipairs(codes) do
      bump(P .. 'count:' .. a, k, delta)
      bump(P .. 'count:' .. a, 'm:' .. k, delta * people)
    end
  end
end

local o = nil
if old then
  o = split(old, '\31')
  local pidx, codes = string.match(oldmeta, '^(%d+)|(.*)$')
  local oldanc = {}
  for c in string.gmatch(codes, '[^,]+') do oldanc[#oldanc + 1] = c end
  index(oldanc, tonumber(pidx), o[KIND], tonumber(o[MEMBERS]), o[STATE] == 'active', nil, -1)
  name_index(o[NAME], false)
end
local row = content .. '\31' .. now
index(anc, packidx, kind, members, state == 'active', row, 1)
name_index(name, true)
if unplaced then
  if reason == '' then reason = '{}' end
  redis.call('HSET', P .. 'unplaced', id, reason)
else
  redis.call('HDEL', P .. 'unplaced', id)
end
redis.call('HSET', P .. 'groups', id, row)
redis.call('HSET', P .. 'gmeta', id, meta)

if oldcontent == content then return {1, ''} end
local what, diff = 'created', cjson.encode(content)
if o then
  local n = split(content, '\31')
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

# The packs under the include codes (codes at 村社区 level or above: their `packs:` hash
# lists the packs), then the extra packs not already read, skipping packs under the exclude
# codes: {number of include packs, pack, pack, …}. The packs go back as they are stored, one
# bulk string each (a whole city is ~3,000): concatenating 12 MB inside Lua cost more
# redis-server time than the reads. ARGV: prefix, "1" to read dismissed groups instead,
# n include, codes…, n extra, pack nodes…, exclude codes…
PACKS_UNDER = r"""
local P = ARGV[1]
local g = ARGV[2] == '1' and 'g' or ''
local i, take, skip, out = 3, {}, {}, {0}
local n = tonumber(ARGV[i])
local includes = {unpack(ARGV, i + 1, i + n)}
i = i + n + 1
n = tonumber(ARGV[i])
local extras = {unpack(ARGV, i + 1, i + n)}
for j = i + n + 1, #ARGV do
  for _, pn in ipairs(redis.call('HKEYS', P .. g .. 'packs:' .. ARGV[j])) do skip[pn] = true end
end
local function read(packnodes)
  local keys = {}
  for _, pn in ipairs(packnodes) do
    if not skip[pn] and not take[pn] then
      take[pn] = true
      keys[#keys + 1] = P .. g .. 'pack:' .. pn
    end
  end
  for first = 1, #keys, 2000 do
    local values = redis.call('MGET', unpack(keys, first, math.min(first + 1999, #keys)))
    for _, v in ipairs(values) do if v then out[#out + 1] = v end end
  end
end
local whole = {}
for _, code in ipairs(includes) do
  for _, pn in ipairs(redis.call('HKEYS', P .. g .. 'packs:' .. code)) do
    whole[#whole + 1] = pn
  end
end
read(whole)
out[1] = #out - 1
read(extras)
return out
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
