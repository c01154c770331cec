---@meta openai
-- Type stubs for lua-language-server (LuaLS). Point `workspace.library` at
-- this folder; nothing here runs.

---@class openai.Error
---@field name string  BadRequestError | AuthenticationError | PermissionDeniedError | NotFoundError | ConflictError | UnprocessableEntityError | RateLimitError | InternalServerError | APIError | APIConnectionError | APIConnectionTimeoutError | APIResponseValidationError | APIUserAbortError
---@field status integer?
---@field message string
---@field type string?
---@field code string?
---@field param string?
---@field error any       the error object of the body
---@field request_id string?
---@field headers table<string, string>?
---@field body any         the decoded error body, or its raw text
---@field cause string?    libcurl's description, for connection errors; what was closed, for APIUserAbortError
local Error = {}

---True for this kind and every kind below it (every kind is an APIError).
---@param name string
---@return boolean
function Error:is(name) end

---@class openai.RequestOptions
---@field timeout number?      seconds for each attempt
---@field max_retries integer?
---@field headers table<string, string|false>?  false removes a header; Content-Length, Transfer-Encoding, Connection, Host, Expect, Upgrade, TE and Trailer are refused
---@field query table<string, any>?

---@class openai.ClientOptions
---@field api_key string?        default OPENAI_API_KEY
---@field base_url string?       default OPENAI_BASE_URL, else https://api.openai.com/v1
---@field organization string?   default OPENAI_ORG_ID
---@field project string?        default OPENAI_PROJECT_ID
---@field timeout number?        seconds per attempt (600)
---@field max_retries integer?   2
---@field default_headers table<string, string|false>?  the framing headers are refused, as in RequestOptions.headers
---@field default_query table<string, any>?
---@field ca_file string?
---@field ca_path string?
---@field proxy string?        [scheme://][user[:password]@]host[:port][/], or "" to ignore the proxy environment variables
---@field max_response_bytes integer?  cap on a response body and on one stream event (64 MiB)
---@field max_response_values integer? cap on the JSON values one body or event decodes to (8 388 608)
---@field transport ("curl"|"ngx")? the transport: nil picks cosockets inside nginx request handlers, libcurl elsewhere

---@class openai.Page
---@field object string
---@field data table[]
---@field first_id string|lightuserdata
---@field last_id string|lightuserdata
---@field has_more boolean
---@field _request_id string?
local Page = {}

---@return boolean
function Page:has_next_page() end

---@return openai.Page?, openai.Error?
function Page:next_page() end

---Every item of this page and of the pages after it; a failed fetch raises the error object.
---@return fun(): table?
function Page:iter() end

---@class openai.ChatCompletionStream
---@field status integer
---@field headers table<string, string>
---@field _request_id string?
local Stream = {}

---The next chat.completion.chunk, nil at the end, or nil and an error
---(APIUserAbortError after close() cut the stream short). Never raises.
---@return table?, openai.Error?
function Stream:next() end

---Reads the rest and returns the assembled chat.completion.
---@return table?, openai.Error?
function Stream:final() end

---For `for chunk in stream:iter() do`: a break closes the stream.
function Stream:iter() end

---Aborts the transfer; next() and final() then return APIUserAbortError,
---unless the stream had already ended.
function Stream:close() end

---@class openai.ChatCompletionMessages
local Messages = {}

---@param completion_id string
---@param query { after: string?, limit: integer?, order: "asc"|"desc"? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function Messages.list(completion_id, query, opts) end

---@class openai.ChatCompletions
---@field messages openai.ChatCompletionMessages
local Completions = {}

---POST /chat/completions. With `stream = true` the result is a stream.
---@param params table
---@param opts openai.RequestOptions?
---@return (table|openai.ChatCompletionStream)?, openai.Error?
function Completions.create(params, opts) end

---GET /chat/completions/{completion_id}
---@param completion_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Completions.retrieve(completion_id, opts) end

---POST /chat/completions/{completion_id}
---@param completion_id string
---@param params { metadata: table<string, string>|lightuserdata }
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Completions.update(completion_id, params, opts) end

---GET /chat/completions
---@param query { after: string?, limit: integer?, order: "asc"|"desc"?, model: string?, metadata: table<string, string>? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function Completions.list(query, opts) end

---DELETE /chat/completions/{completion_id}
---@param completion_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Completions.delete(completion_id, opts) end

---@class openai.Chat
---@field completions openai.ChatCompletions

---@class openai.Client
---@field chat openai.Chat
local Client = {}

---Releases the client's connections; later calls raise.
function Client:close() end

---@class openai: openai.Client
---@field VERSION string
---@field null lightuserdata   JSON null (== cjson.null, ngx.null)
---@field array_mt table       metatable of decoded arrays
---@field Error table          metatable of error objects
---@field json { encode: fun(value: any): string, decode: fun(text: string, max_depth: integer?, max_values: integer?): any, string? }
local openai = {}

---@param opts openai.ClientOptions?
---@return openai.Client
function openai.new(opts) end

---Marks a table (or a new empty one) as a JSON array.
---@param tbl table?
---@return table
function openai.array(tbl) end

---A JSON integer given by its decimal digits (or an integral number), as the
---decoder gives it on this runtime: an integer on Lua 5.3/5.4; a number
---within 2^53, else an int64_t/uint64_t cdata (LuaJIT) or an openai.int64
---userdata (Lua 5.1/5.2).
---@param digits string|number
---@return integer|number|ffi.cdata*|userdata
function openai.int64(digits) end

---A task: a coroutine whose calls wait by yielding (openai.spawn).
---@class openai.Task
local Task = {}

---Whether it has ended (returned, failed or been cancelled).
---@return boolean
function Task:done() end

---Its function's results. Inside a task it waits by yielding; outside, it
---drives every task until this one ends. An error raised in the task is
---raised again here; a cancelled task gives nil and an APIUserAbortError.
---@return any ...
function Task:result() end

---Aborts it: its transfers are closed and it never resumes. Idempotent.
function Task:cancel() end

---Starts fn(...) as a task (it runs at once until its first wait).
---Inside nginx (where cosockets may be used) the task is a light thread.
---@param fn function
---@param ... any
---@return openai.Task
function openai.spawn(fn, ...) end

---Performs the ready I/O of every task, resumes those whose calls
---completed, waits at most `timeout` seconds (0, the default: never) for
---more; returns how many tasks still run.
---@param timeout number?
---@return integer
function openai.poll(timeout) end

---Spawns fn(...) and polls until it ends; returns its results (raises its
---error).
---@param fn function
---@param ... any
---@return any ...
function openai.run(fn, ...) end

---A file descriptor that becomes readable when poll() has work (an epoll
---set over libcurl's sockets; nil inside nginx, whose own loop drives the I/O).
---@return integer?
function openai.pollfd() end

---Seconds until poll() must be called anyway (0: now), or nil when nothing
---waits on a timer.
---@return number?
function openai.timeout() end

---"r": with pollfd() and timeout(), cqueues' pollable protocol.
---@return string
function openai.events() end

return openai
