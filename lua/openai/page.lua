-- Cursor pages of list endpoints. A page is the list object as the API
-- sent it (data, has_more, first_id, last_id: pairs() sees just those),
-- with methods from its metatable.
local object = require("openai.object")

local Page = {}

-- How to fetch the page after a given one, kept outside the page so that
-- pairs(page) shows only the JSON members.
local fetchers = setmetatable({}, { __mode = "k" })

local page_mt = {
  __name = "openai.Page",
  __index = function(page, key)
    if key == "_request_id" then return object.request_id(page) end
    return Page[key]
  end,
}

-- Turns a decoded list object into a page. `fetch(after)` requests the
-- next page (it keeps the original query and sets `after`).
function Page.wrap(list, request_id, fetch)
  object.set_request_id(setmetatable(list, page_mt), request_id)
  fetchers[list] = fetch
  return list
end

local function last_item(page)
  local data = rawget(page, "data")
  if type(data) ~= "table" then return nil end
  return data[#data]
end

-- As the official SDKs: no when has_more is false or data is empty,
-- otherwise yes when the last item has an id.
function Page:has_next_page()
  if rawget(self, "has_more") == false then return false end
  local last = last_item(self)
  return type(last) == "table" and type(last.id) == "string"
end

-- Fetches the next page: returns it, or nil and an error object.
function Page:next_page()
  if not self:has_next_page() then
    error("No next page expected; please check :has_next_page() before calling :next_page()", 2)
  end
  return fetchers[self](last_item(self).id)
end

-- Iterates over every item of this page and the pages after it, fetching
-- them as needed: `for item in page:iter() do`. A failed fetch raises the
-- error object.
function Page:iter()
  local page, i = self, 0
  return function()
    while true do
      local data = rawget(page, "data")
      i = i + 1
      if type(data) == "table" and data[i] ~= nil then return data[i] end
      if not page:has_next_page() then return nil end
      local next_page, err = page:next_page()
      if next_page == nil then error(err, 2) end
      page, i = next_page, 0
    end
  end
end

return Page
