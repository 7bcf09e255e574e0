-- The group write script of layout 3 (every registry key under {reg}), kept to test the
-- migration to the per-county shards of layout 4.
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
  return out, pack
end

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

if oldcontent == content and oldmeta == meta and mode ~= 'reindex' then
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
-- a reindex (layout rebuild) keeps the record's own updated_at
if mode == 'reindex' and old then now = string.match(old, '\31([^\31]*)$') end
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
