-- A local HTTPS endpoint for the specs: self-signed certificates made with
-- openssl at test time, and stunnel (Debian package stunnel4) terminating
-- TLS on 127.0.0.1 in front of a plain-HTTP mock.
--
--   local tls = require("spec.helpers.tls")
--   local missing = tls.missing()          -- nil, or why TLS specs must wait
--   local dir = tls.tempdir()
--   local ca = tls.certificate(dir, "server", { san = "IP:127.0.0.1" })
--   -- ca.cert, ca.key: PEM files; ca.hash: OpenSSL subject hash
--   local front = tls.start { cert = ca.cert, key = ca.key, port = mock_port }
--   front.url ("https://127.0.0.1:PORT"), front.pid
--   front:stop()                           -- by PID, waits until it is gone
--   tls.remove(dir)
--
-- Nothing here listens beyond 127.0.0.1; stunnel is stopped by its PID, and
-- a small watchdog (also stopped by PID) ends it if the test run dies first.

local socket = require("socket")

local M = {}

local process = require("spec.helpers.process")
local shell_quote, read_file, write_file = process.shell_quote, process.read_file, process.write_file
local run, alive, own_pid = process.run, process.alive, process.own_pid
M.run = run
M.alive = alive

-- The stunnel binary (Debian installs both names), or nil.
local function stunnel_binary()
  for _, name in ipairs { "stunnel4", "stunnel" } do
    local out, ok = run("command -v " .. name)
    if ok and out:match("%S") then return (out:gsub("%s+$", "")) end
  end
  return nil
end

-- nil when openssl and stunnel are installed, else a reason for pending().
function M.missing()
  local _, has_openssl = run("command -v openssl")
  local lacking = {}
  if not has_openssl then lacking[#lacking + 1] = "openssl" end
  if not stunnel_binary() then lacking[#lacking + 1] = "stunnel4" end
  if #lacking == 0 then return nil end
  return "TLS specs need the Debian packages " .. table.concat(lacking, " and ") .. " (apt-get install openssl stunnel4)"
end

function M.tempdir()
  local out, ok = run("mktemp -d /tmp/openai-tls-spec.XXXXXX")
  assert(ok, "mktemp failed: " .. out)
  return (out:gsub("%s+$", ""))
end

function M.remove(dir)
  if dir and dir:match("^/tmp/openai%-tls%-spec%.") then
    run("rm -rf " .. shell_quote(dir))
  end
end

-- A self-signed certificate (its own CA) for `opts.san` (default
-- IP:127.0.0.1), valid for a day. Returns { cert =, key =, hash = }.
function M.certificate(dir, name, opts)
  opts = opts or {}
  local cert, key = dir .. "/" .. name .. ".pem", dir .. "/" .. name .. ".key"
  local san = opts.san or "IP:127.0.0.1"
  local cmd = table.concat({
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1",
    "-subj " .. shell_quote("/CN=" .. (opts.cn or "127.0.0.1")),
    "-addext " .. shell_quote("subjectAltName=" .. san),
    "-addext basicConstraints=critical,CA:TRUE",
    "-keyout " .. shell_quote(key), "-out " .. shell_quote(cert),
  }, " ")
  local out, ok = run(cmd)
  assert(ok, "openssl req failed: " .. out)
  local hash
  out, ok = run("openssl x509 -noout -hash -in " .. shell_quote(cert))
  assert(ok, "openssl x509 -hash failed: " .. out)
  hash = out:match("^(%x+)")
  return { cert = cert, key = key, hash = hash }
end

-- A directory laid out for CURLOPT_CAPATH / SSL_CERT_DIR: the certificate
-- under its subject hash (what `openssl rehash` would make).
function M.hashed_dir(dir, name, certificate)
  local path = dir .. "/" .. name
  local out, ok = run("mkdir -p " .. shell_quote(path) .. " && cp " .. shell_quote(certificate.cert) .. " "
    .. shell_quote(path .. "/" .. certificate.hash .. ".0"))
  assert(ok, "cannot make the hashed CA directory: " .. out)
  return path
end

local free_port = require("spec.helpers.mock").free_port

local accepts = require("spec.helpers.mock").accepts

local Front = {}
Front.__index = Front

-- Starts stunnel in server mode: TLS on 127.0.0.1:<free port> with
-- opts.cert/opts.key, plain TCP to 127.0.0.1:opts.port.
function M.start(opts)
  local binary = assert(stunnel_binary(), "stunnel is not installed")
  local dir = assert(opts.dir, "tls.start needs a directory")
  local port = opts.listen or free_port()
  local conf = dir .. "/stunnel-" .. port .. ".conf"
  local log = dir .. "/stunnel-" .. port .. ".log"
  write_file(conf, table.concat({
    "foreground = yes",
    "pid =",
    "output = " .. log,
    "debug = 4",
    "[https]",
    "accept = 127.0.0.1:" .. port,
    "connect = 127.0.0.1:" .. ("%d"):format(opts.port),
    "cert = " .. opts.cert,
    "key = " .. opts.key,
    "",
  }, "\n"))
  local pid = assert(process.spawn(shell_quote(binary) .. " " .. shell_quote(conf) .. " >/dev/null 2>&1 </dev/null"),
    "could not start stunnel")
  local self = setmetatable({ pid = pid, port = port, conf = conf, log = log,
                              url = "https://127.0.0.1:" .. port }, Front)
  -- Watchdog: ends stunnel if the test process dies without stopping it,
  -- and ends itself once stunnel is gone.
  local parent = own_pid()
  if parent then
    local script = ("while kill -0 %d 2>/dev/null && kill -0 %d 2>/dev/null; do sleep 0.5; done; kill %d 2>/dev/null")
      :format(parent, pid, pid)
    self.watchdog = process.spawn("sh -c " .. shell_quote(script) .. " >/dev/null 2>&1 </dev/null")
  end
  if not process.wait_ready(pid, 10, function() return accepts(port) end) then
    local why = read_file(log) or ""
    self:stop()
    error("stunnel did not start: " .. why, 2)
  end
  return self
end

-- Stops stunnel and its watchdog by PID; idempotent.
function Front:stop()
  if self.stopped then return end
  self.stopped = true
  process.stop(self.pid)
  process.stop(self.watchdog)
end

Front.__gc = function(self) pcall(Front.stop, self) end

return M
