-- Base64 for the specs (the hostile server's raw mode takes it), with
-- arithmetic only: Lua 5.1 and LuaJIT have no bit operators. Runs inside
-- nginx too (spec/contract/).
--
--   base64.url(s)       URL-safe alphabet, no padding: fits a query value
--   base64.standard(s)  "+/" and "=" padding
local base64 = {}

local STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local function encode(s, alphabet, pad)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local digits = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, 4 do
      if k <= digits then
        local v = math.floor(n / 2 ^ (6 * (4 - k))) % 64
        out[#out + 1] = alphabet:sub(v + 1, v + 1)
      elseif pad then
        out[#out + 1] = "="
      end
    end
  end
  return table.concat(out)
end

function base64.url(s) return encode(s, URL, false) end
function base64.standard(s) return encode(s, STANDARD, true) end

return base64
