-- What a decoded JSON value is. Server JSON may hold any value anywhere:
-- code that reads it checks the kind before using a value.
local core = require("openai.core")

local shape = {}

-- A JSON array (the decoder marks them with core.array_mt).
function shape.is_array(value)
  return type(value) == "table" and getmetatable(value) == core.array_mt
end

-- A JSON object.
function shape.is_object(value)
  return type(value) == "table" and getmetatable(value) ~= core.array_mt
end

-- Missing or JSON null.
function shape.absent(value)
  return value == nil or value == core.null
end

return shape
