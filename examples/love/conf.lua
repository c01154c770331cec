-- LÖVE's configuration: headless, so the example runs with no display and
-- no sound device (a server, CI, a terminal). A game keeps its window:
-- set HEADLESS to false and love.draw below shows the reply as it grows.
local HEADLESS = true

function love.conf(t)
  t.identity = "openai-example" -- a save directory of its own, made only if something is saved
  if HEADLESS then
    t.window = false
    -- Only the event loop and the timer stay: these need a display or a
    -- sound device, or go unused here.
    for _, name in ipairs { "audio", "sound", "graphics", "window", "image", "font", "video",
                            "joystick", "keyboard", "mouse", "touch", "physics" } do
      t.modules[name] = false
    end
  end
end
