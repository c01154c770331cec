-- Returned objects carry their request id (the x-request-id header) as
-- `_request_id` without it being a member, so pairs() yields exactly the
-- JSON members.
local object = {}

local request_ids = setmetatable({}, { __mode = "k" })

local object_mt = {
  __name = "openai.Object",
  __index = function(value, key)
    if key == "_request_id" then return request_ids[value] end
  end,
}

-- Marks a decoded JSON object (a table without metatable) as returned by
-- the request `request_id`.
function object.attach(value, request_id)
  request_ids[value] = request_id
  return setmetatable(value, object_mt)
end

-- For values with a metatable of their own (pages): the id to expose, set
-- and read.
function object.set_request_id(value, request_id)
  request_ids[value] = request_id
end

function object.request_id(value)
  return request_ids[value]
end

return object
