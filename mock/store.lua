-- In-memory store of chat completions (the "stored completions" feature).
--
-- Each entry keeps the decoded object and, for pre-loaded fixtures that were
-- never updated, the original bytes: those are served verbatim so a client's
-- JSON decoder meets exactly what the real API example contains.

local json = require("mock.json")

local M = {}
M.__index = M

local null = json.null

-- Text of one request message: a string, or the text parts concatenated.
function M.message_text(m)
  local c = json.is_object(m) and m.content or nil
  if type(c) == "string" then return c end
  if json.is_array(c) then
    local out = {}
    for _, part in ipairs(c) do
      if json.is_object(part) and type(part.text) == "string" then out[#out + 1] = part.text end
    end
    return table.concat(out)
  end
  return ""
end

-- Request messages in their stored form (ChatCompletionStoreMessage), with
-- ids `<completion id>-<index from 0>`.
function M.stored_messages(cid, messages)
  local out = json.array()
  for i, m in ipairs(messages) do
    local content, parts = m.content, null
    if json.is_array(content) then
      parts = content
      content = M.message_text(m)
    elseif type(content) ~= "string" then
      content = null
    end
    out[i] = json.obj(
      "id", string.format("%s-%d", cid, i - 1),
      "role", m.role ~= nil and m.role or null,
      "content", content,
      "name", m.name ~= nil and m.name or null,
      "content_parts", parts)
  end
  return out
end

-- Read a whole file or raise a readable error (fixtures are required).
local function slurp(path)
  local f, err = io.open(path, "rb")
  if not f then error("cannot read fixture: " .. tostring(err), 0) end
  local text = f:read("a")
  f:close()
  return text
end

-- Load the fixture set once: a list of { raw = text, messages = array }.
-- `root` is the repository root; the manifest lists files relative to it.
function M.load_fixtures(root)
  local manifest_path = root .. "/mock/fixtures/manifest.json"
  local manifest = assert(json.decode(slurp(manifest_path)), "bad fixture manifest")
  local list = {}
  for _, item in ipairs(manifest) do
    local raw = slurp(root .. "/" .. item.file)
    local obj, err = json.decode(raw)
    if not obj then error("bad fixture " .. item.file .. ": " .. err, 0) end
    list[#list + 1] = { raw = raw, messages = item.messages or json.array() }
  end
  return list
end

-- A fresh store holding copies of the fixtures (so updates never leak into
-- the pristine set used by the next reset).
function M.new(fixtures)
  local self = setmetatable({ entries = {}, by_id = {}, seq = 0 }, M)
  for _, fx in ipairs(fixtures) do
    local obj = assert(json.decode(fx.raw))
    self:put(obj, M.stored_messages(obj.id, json.copy(fx.messages)), fx.raw)
  end
  return self
end

function M:put(obj, messages, raw)
  self.seq = self.seq + 1
  local entry = {
    id = obj.id, obj = obj, raw = raw, messages = messages or json.array(),
    created = json.tonumber(obj.created) or 0, seq = self.seq,
  }
  if self.by_id[entry.id] then self:delete(entry.id) end
  self.entries[#self.entries + 1] = entry
  self.by_id[entry.id] = entry
  return entry
end

function M:get(id)
  return self.by_id[id]
end

function M:delete(id)
  local entry = self.by_id[id]
  if not entry then return false end
  self.by_id[id] = nil
  for i, e in ipairs(self.entries) do
    if e == entry then table.remove(self.entries, i) break end
  end
  return true
end

-- JSON value to serve for an entry: the untouched bytes when we have them.
function M.value(entry)
  if entry.raw then return json.raw(entry.raw) end
  return entry.obj
end

function M:update_metadata(id, metadata)
  local entry = self.by_id[id]
  if not entry then return nil end
  json.set(entry.obj, "metadata", metadata)
  entry.raw = nil -- the stored bytes no longer describe the object
  return entry
end

-- Entries in creation order: `created`, then insertion.
function M:ordered()
  local list = {}
  for i, e in ipairs(self.entries) do list[i] = e end
  table.sort(list, function(a, b)
    if a.created ~= b.created then return a.created < b.created end
    return a.seq < b.seq
  end)
  return list
end

-- Cursor pagination shared by both list endpoints.
-- items: ordered ascending; each has .id.  q: { after, limit, order }.
-- keep(item) -> bool filters items (the cursor itself need not match it).
function M.paginate(items, q, keep)
  local seq = items
  if q.order == "desc" then
    seq = {}
    for i = #items, 1, -1 do seq[#seq + 1] = items[i] end
  end
  local start = 1
  if q.after then
    start = nil
    for i, item in ipairs(seq) do
      if item.id == q.after then start = i + 1 break end
    end
    if not start then return {}, false end -- unknown cursor: nothing after it
  end
  local page, has_more = {}, false
  for i = start, #seq do
    local item = seq[i]
    if not keep or keep(item) then
      if #page == q.limit then has_more = true break end
      page[#page + 1] = item
    end
  end
  return page, has_more
end

return M
