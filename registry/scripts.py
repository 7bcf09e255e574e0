"""Lua scripts of the registry: each write of a node, group or person is one atomic script.

Every script gets the key prefix of the one slot it runs in (the index, "…{reg}:", or a
shard, "…{reg:<county>}:"; keys.py) as ARGV[1] and derives the other key names from it, so
a write and all the per-ancestor indexes it maintains land in that slot. KEYS[1] is the main
hash, declared so a cluster client routes the call. A group's ancestors come from the index
(ROUTE) and are passed to the shard's write script (UPSERT_GROUP).
"""

from __future__ import annotations

# Walks parent pointers. Returns the codes root first, the index of the group's "pack
# node" among them (the deepest 网格 on the path, else the deepest 乡镇街道/县区/市; store.py
# PACK_LEVELS) and the levels, or nil for an unknown node or a cycle.
_ANCESTORS = r"""
local PACK_LEVELS = {city = true, county = true, township = true, grid = true}
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
  return out, pack, levels
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

# Index slot. `where`: the shard of the groups on a node (its 乡镇街道's code, else its
# 县区's, else "-"; shards.shard_of), their pack index and ancestors (root first, joined by
# ","), or nil for an unknown node. `claim`: the shards `gshard` names for each group, a
# group not there yet claimed for its shard (so two first writes agree on its home), and
# every shard written to listed in `shards`. A few commands per batch, not per group: the
# index must not become the busy slot.
_WHERE = _ANCESTORS + r"""
local function where(P, node)
  if node == '' then return '-', 0, '' end
  local codes, pack, levels = ancestors(P, node)
  if not codes then return nil end
  local township, county = nil, nil
  for i, level in ipairs(levels) do
    if level == 'township' and not township then township = codes[i] end
    if level == 'county' and not county then county = codes[i] end
  end
  return township or county or '-', pack, table.concat(codes, ',')
end
local function claim(P, ids, shards)
  local held = redis.call('HMGET', P .. 'gshard', unpack(ids))
  local new, used, list, first = {}, {}, {}, {}
  for i, id in ipairs(ids) do
    held[i] = held[i] or first[id]  -- a group twice in one batch: claimed by the first
    if not held[i] then
      held[i] = shards[i]
      first[id] = shards[i]
      new[#new + 1] = id; new[#new + 1] = shards[i]
      used[shards[i]] = true
    elseif held[i] ~= shards[i] then
      used[shards[i]] = true
    end
  end
  if #new > 0 then redis.call('HSET', P .. 'gshard', unpack(new)) end
  for shard in pairs(used) do list[#list + 1] = shard end
  if #list > 0 then redis.call('SADD', P .. 'shards', unpack(list)) end
  return held
end
"""

# Where one group write goes. ARGV: prefix, node ('' for an unplaced group), chat id.
# Returns {tree version, held shards, shard, pack index (-1: unknown node), codes}.
ROUTE = _WHERE + r"""
local P, node, id = ARGV[1], ARGV[2], ARGV[3]
local version = redis.call('GET', P .. 'treever') or '0'
local shard, pack, codes = where(P, node)
if not shard then return {version, '', '', -1, ''} end
return {version, claim(P, {id}, {shard})[1], shard, pack, codes}
"""

# Where a batch of group writes goes, for its distinct nodes. ARGV: prefix, nodes….
# Returns {tree version, shard, pack index (-1: unknown node), codes, shard, …} in order.
PLACES = _WHERE + r"""
local P = ARGV[1]
local out = {redis.call('GET', P .. 'treever') or '0'}
for i = 2, #ARGV do
  local shard, pack, codes = where(P, ARGV[i])
  if not shard then shard, pack, codes = '', -1, '' end
  out[#out + 1] = shard; out[#out + 1] = pack; out[#out + 1] = codes
end
return out
"""

# ARGV: prefix, chat id, shard, chat id, shard, … Returns the held shards of each (CLAIM).
CLAIM = _WHERE + r"""
local ids, shards = {}, {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i]; shards[#shards + 1] = ARGV[i + 1] end
return claim(ARGV[1], ids, shards)
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
  if o['parent'] ~= parent or o['level'] ~= level then
    moved = 1
    redis.call('INCR', P .. 'treever')  -- group writers routed on the old tree retry
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

# Shard slot. ARGV: prefix, chat_id, content row (codec.py, without updated_at), kind, node,
#       state, name, members, now, actor, source, unplaced reason json,
#       mode (any|absent|match|reindex|move|drop|dropmatch), expected stored row, pack index,
#       ancestor codes (root first, joined by ","; ROUTE), and for a move: the row the old
#       shard holds and its history entries (joined by newlines).
# The stored row is the content plus US and `now`; comparisons strip that last field again.
# Indexes kept here (keys.py): the row also sits in its pack (`pack:`/`gpack:` + pack node,
# rows joined by newlines), every ancestor of the pack node refcounts it in `packs:`/`gpacks:`
# and lists it with its SHA-1 in `psum:`/`gpsum:` (`packsum`/`gpacksum`: all packs), every
# ancestor of the group counts it per kind in `count:`, and `gmeta` remembers where it was
# indexed ("pack index|codes") so the next write can undo exactly that. Mode "reindex"
# rebuilds the indexes of an unchanged record (a layout upgrade) and keeps its updated_at.
# Mode "move" writes a group that another shard holds: a copy left here by an interrupted
# move is unindexed, the history is the old shard's plus this change, and an unchanged
# record keeps its updated_at. Mode "drop" removes the group and everything it indexed here;
# "dropmatch" does so only if the stored row is still the expected one (none: '').
# Returns {status, what}: status 0 unchanged, 1 written, -1 unknown node, -2 conflict (the
# record is not what the caller read). `what` names the history entry written ('' for none).
UPSERT_GROUP = r"""
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
if mode == 'dropmatch' then
  if (old or '') ~= ARGV[14] then return {-2, ''} end
  mode = 'drop'
end
if mode == 'match' and old ~= ARGV[14] then return {-2, ''} end
if mode == 'absent' and old then return {-2, ''} end
-- the record this write changes: here, or in the shard it moves from
local prev = old
if mode == 'move' then prev = ARGV[17] ~= '' and ARGV[17] or nil end
local oldcontent = prev and string.match(prev, '^(.*)\31[^\31]*$')

local anc, packidx = {}, tonumber(ARGV[15])
for c in string.gmatch(ARGV[16], '[^,]+') do anc[#anc + 1] = c end
local meta = packidx .. '|' .. ARGV[16]
local oldmeta = redis.call('HGET', P .. 'gmeta', id) or '0|'
local unplaced = state == 'active' and node == ''
if mode == 'drop' and not old then return {0, ''} end

if oldcontent == content and oldmeta == meta and mode ~= 'reindex' and mode ~= 'move' then
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

-- the packs this write touched, each stamped once at the end with the SHA-1 of its content:
-- in `packsum`, and in `psum:` of each ancestor that still counts the pack in `packs:`
local touched = {}
local function stamp_packs()
  for key, at in pairs(touched) do
    local prefix, packnode = at[1], at[2]
    local pack = redis.call('GET', key)
    local sum = pack and redis.sha1hex(pack)
    if sum then redis.call('HSET', P .. prefix .. 'packsum', packnode, sum)
    else redis.call('HDEL', P .. prefix .. 'packsum', packnode) end
    for code in pairs(at[3]) do
      if sum and redis.call('HEXISTS', P .. prefix .. 'packs:' .. code, packnode) == 1 then
        redis.call('HSET', P .. prefix .. 'psum:' .. code, packnode, sum)
      else
        redis.call('HDEL', P .. prefix .. 'psum:' .. code, packnode)
      end
    end
  end
end

-- (un)index: delta -1 removes a record indexed at codes/packidx, +1 adds one
local function index(codes, pidx, k, people, active, row, delta)
  if #codes == 0 then return end
  local packnode = codes[pidx]
  local prefix = active and '' or 'g'
  local key = P .. prefix .. 'pack:' .. packnode
  for i = 1, pidx do bump(P .. prefix .. 'packs:' .. codes[i], packnode, delta) end
  if delta < 0 then pack_drop(key) else pack_add(key, row) end
  local at = touched[key] or {prefix, packnode, {}}
  for i = 1, pidx do at[3][codes[i]] = true end
  touched[key] = at
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
if mode == 'drop' then
  stamp_packs()
  redis.call('HDEL', P .. 'groups', id)
  redis.call('HDEL', P .. 'gmeta', id)
  redis.call('HDEL', P .. 'unplaced', id)
  redis.call('DEL', P .. 'hist:' .. id)
  return {1, ''}
end
-- a reindex (layout rebuild) keeps the record's own updated_at, so does an unchanged move
if (mode == 'reindex' or mode == 'move' and oldcontent == content) and prev then
  now = string.match(prev, '\31([^\31]*)$')
end
local row = content .. '\31' .. now
index(anc, packidx, kind, members, state == 'active', row, 1)
stamp_packs()
name_index(name, true)
if unplaced then
  if reason == '' then reason = '{}' end
  redis.call('HSET', P .. 'unplaced', id, reason)
else
  redis.call('HDEL', P .. 'unplaced', id)
end
redis.call('HSET', P .. 'groups', id, row)
redis.call('HSET', P .. 'gmeta', id, meta)
if mode == 'move' then
  redis.call('DEL', P .. 'hist:' .. id)
  for entry in string.gmatch(ARGV[18], '[^\n]+') do
    redis.call('RPUSH', P .. 'hist:' .. id, entry)
  end
  o = prev and split(prev, '\31')
end

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

# The packs under the include codes (their `psum:` hash lists the packs at or below each,
# with the packs' SHA-1), then the extra packs not already read, skipping packs under the
# exclude codes. The caller names the packs it holds decoded, with their SHA-1; only the
# packs whose SHA-1 differs come back with their rows, so a process re-reads (and
# re-decodes) only what changed since its last query. Lists travel as single US-joined
# strings: thousands of separate arguments and replies cost more than the work itself.
# ARGV: prefix, "1" to read dismissed groups instead, n include, codes…, n extra,
# pack nodes…, n exclude, codes…, held ("node US sha1 US" per held pack).
# Returns {number of include packs, "node US sha1" of every pack read (include packs
# first), joined by US, node, rows, node, rows, … of the packs not held}.
PACKS_UNDER = r"""
local P = ARGV[1]
local g = ARGV[2] == '1' and 'g' or ''
local function list(i)
  local n = tonumber(ARGV[i])
  return {unpack(ARGV, i + 1, i + n)}, i + n + 1
end
local includes, extras, excludes, i
includes, i = list(3)
extras, i = list(i)
excludes, i = list(i)
local known, take, skip, state, out = {}, {}, {}, {}, {0, ''}
for pn, sum in string.gmatch(ARGV[i], '([^\31]*)\31([^\31]*)\31') do known[pn] = sum end
for _, code in ipairs(excludes) do
  for _, pn in ipairs(redis.call('HKEYS', P .. g .. 'packs:' .. code)) do skip[pn] = true end
end
-- entries: pack node, sha1 (false: the sum is unknown and is taken from the rows)
local function emit(entries)
  local stale = {}
  for j = 1, #entries, 2 do
    local pn, sum = entries[j], entries[j + 1]
    if not sum or known[pn] ~= sum then stale[#stale + 1] = P .. g .. 'pack:' .. pn end
  end
  local rows = #stale > 0 and redis.call('MGET', unpack(stale)) or {}
  local r = 0
  for j = 1, #entries, 2 do
    local pn, sum = entries[j], entries[j + 1]
    if not sum or known[pn] ~= sum then
      r = r + 1
      local body = rows[r]
      if body then
        if not sum then sum = redis.sha1hex(body) end
        out[#out + 1] = pn; out[#out + 1] = body
      else
        sum = false
      end
    end
    if sum then state[#state + 1] = pn; state[#state + 1] = sum end
  end
end
local function chunked(entries)
  for first = 1, #entries, 4000 do
    emit({unpack(entries, first, math.min(first + 3999, #entries))})
  end
end
local whole = {}
for _, code in ipairs(includes) do
  local sums = redis.call('HGETALL', P .. g .. 'psum:' .. code)
  for j = 1, #sums, 2 do
    local pn = sums[j]
    if not skip[pn] and not take[pn] then
      take[pn] = true
      whole[#whole + 1] = pn; whole[#whole + 1] = sums[j + 1]
    end
  end
end
chunked(whole)
out[1] = #state / 2
local more = {}
for _, pn in ipairs(extras) do
  if not skip[pn] and not take[pn] then take[pn] = true; more[#more + 1] = pn end
end
if #more > 0 then
  local sums = redis.call('HMGET', P .. g .. 'packsum', unpack(more))
  local entries = {}
  for j, pn in ipairs(more) do entries[#entries + 1] = pn; entries[#entries + 1] = sums[j] end
  chunked(entries)
end
out[2] = table.concat(state, '\31')
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
