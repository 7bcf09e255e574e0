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

# ARGV: prefix, chat_id, content json, kind, node, state, name, members, now, actor, source,
#       unplaced reason json, mode (any|absent|match), expected content.
# Returns {status, what}: status 0 unchanged, 1 written, -1 unknown node, -2 conflict (the
# record is not what the caller read). `what` names the history entry written ('' for none).
UPSERT_GROUP = _ANCESTORS + """
local P, id, content = ARGV[1], ARGV[2], ARGV[3]
local kind, node, state, name = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local members = tonumber(ARGV[8])
local now, actor, source, reason, mode = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]

local old = redis.call('HGET', P .. 'groups', id)
if mode == 'match' and old ~= ARGV[14] then return {-2, ''} end
if mode == 'absent' and old then return {-2, ''} end

local anc = {}
if node ~= '' then
  anc = ancestors(P, node)
  if not anc then return {-1, ''} end
end
local ancstr = table.concat(anc, ',')
local oldmeta = redis.call('HGET', P .. 'gmeta', id)
local oldanc = ''
if oldmeta then oldanc = string.match(oldmeta, '|(.*)$') end
local unplaced = state == 'active' and node == ''

if old == content and oldanc == ancstr then
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
  o = cjson.decode(old)
  local active = o['state'] == 'active'
  local set = active and 'under:' or 'gone:'
  for a in string.gmatch(oldanc, '[^,]+') do
    redis.call('HDEL', P .. set .. a, id)
    if active then count(a, o['kind'], -1, -o['member_count']) end
  end
  name_index(o['name'], false)
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
redis.call('HSET', P .. 'groups', id, content)
redis.call('HSET', P .. 'gmeta', id, now .. '|' .. ancstr)

if old == content then return {1, ''} end
local what, diff = 'created', content
if o then
  local n = cjson.decode(content)
  local changes, structural = {}, false
  for k, v in pairs(n) do
    if cjson.encode(o[k]) ~= cjson.encode(v) then
      changes[k] = {from = o[k], to = v}
      if k ~= 'member_count' then structural = true end
    end
  end
  if not structural then return {1, ''} end
  diff = cjson.encode(changes)
  if n['state'] ~= o['state'] then
    what = (n['state'] == 'dismissed') and 'dismissed' or 'restored'
  elseif n['node'] ~= o['node'] then
    what = 'moved'
  else
    what = 'updated'
  end
end
redis.call('XADD', P .. 'hist:' .. id, 'MAXLEN', '~', 1000, '*',
  'at', now, 'actor', actor, 'source', source, 'what', what, 'changes', diff)
return {1, what}
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
