-- The Conversations resource: conversations (metadata) holding a list of
-- items.  Responses created with `conversation` append their input and
-- output items here (mock/responses.lua calls append), as the real API does.

local json = require("mock.json")
local wire = require("mock.wire")
local items = require("mock.items")

local M = {}
M.__index = M

local null = json.null

-- The most items one request may add (create or items.create).
local MAX_ITEMS = 20

function M.new(created_base)
  return setmetatable({
    by_id = {}, seq = 0, created_base = created_base,
    item_id = items.counter("msg_conv"),
  }, M)
end

-- The conversation record for an id: { obj = ConversationResource, items =
-- list in creation order }, or nil.
function M:get(id)
  return self.by_id[id]
end

function M.not_found(id)
  return wire.error_body(string.format("Conversation with id '%s' not found.", id))
end

-- Adds stored items (mock.items) at the end of a conversation.
function M.append(conv, list)
  for _, item in ipairs(list) do conv.items[#conv.items + 1] = item end
end

-- The conversation of a request, or nil after sending the 404.
function M:find(res, id)
  local conv = self.by_id[id]
  if not conv then res:send(404, M.not_found(id)) end
  return conv
end

-- A checked `items` list of a body in stored form, or nil after the 400.
function M:take_items(res, list)
  local bad = items.check(list, "items", MAX_ITEMS)
  if bad then
    res:send(400, bad)
    return nil
  end
  return items.store(list, self.item_id)
end

local function check_metadata(body)
  return wire.check_optional(body, "metadata", "object")
end

function M:create(req, res)
  local body, err = wire.body_object(req, true)
  if not body then return res:send(400, err) end
  local bad = check_metadata(body)
  if bad then return res:send(400, bad) end
  local list = {}
  if body.items ~= nil and body.items ~= null then
    list = self:take_items(res, body.items)
    if not list then return end
  end
  self.seq = self.seq + 1
  local md = body.metadata
  local conv = {
    obj = json.obj(
      "id", "conv_mock" .. self.seq,
      "object", "conversation",
      "created_at", self.created_base + self.seq,
      "metadata", json.is_object(md) and md or json.obj()),
    items = list,
  }
  self.by_id[conv.obj.id] = conv
  res:send(200, json.encode(conv.obj))
end

M.retrieve = wire.on_found(function(_, _, res, conv)
  res:send(200, json.encode(conv.obj))
end)

M.update = wire.on_found(function(_, req, res, conv)
  local body, bad = wire.body_object(req)
  if body and body.metadata == nil then bad = wire.missing("metadata") end
  bad = bad or check_metadata(body)
  if bad then return res:send(400, bad) end
  json.set(conv.obj, "metadata", body.metadata == null and json.obj() or body.metadata)
  res:send(200, json.encode(conv.obj))
end)

M.delete = wire.on_found(function(self, _, res, conv)
  local id = conv.obj.id
  self.by_id[id] = nil
  res:send(200, json.encode(json.obj("id", id, "object", "conversation.deleted", "deleted", true)))
end)

M.add_items = wire.on_found(function(self, req, res, conv)
  local body, err = wire.body_object(req)
  if not body then return res:send(400, err) end
  if body.items == nil or body.items == null then return res:send(400, wire.missing("items")) end
  local list = self:take_items(res, body.items)
  if not list then return end
  M.append(conv, list)
  res:send(200, wire.item_list_body(list, false))
end)

-- Newest first unless asked otherwise, like the real list.
M.list_items = wire.on_found(function(_, req, res, conv)
  wire.send_page(req, res, conv.items, "desc")
end)

-- The index of an item in a conversation, or nil after sending the 404.
local function find_item(res, conv, item_id)
  for i, item in ipairs(conv.items) do
    if item.id == item_id then return i end
  end
  res:send(404, wire.error_body(string.format("Item with id '%s' not found.", item_id)))
  return nil
end

M.retrieve_item = wire.on_found(function(_, _, res, conv, item_id)
  local i = find_item(res, conv, item_id)
  if i then res:send(200, json.encode(conv.items[i])) end
end)

-- Answers with the conversation, as the real API does.
M.delete_item = wire.on_found(function(_, _, res, conv, item_id)
  local i = find_item(res, conv, item_id)
  if not i then return end
  table.remove(conv.items, i)
  res:send(200, json.encode(conv.obj))
end)

return M
