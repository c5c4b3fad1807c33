-- wrk script of tests/bench/proxy_bench.py: proxy-form `GET http://host/` over a host file
-- (one name a line; unlisted names contain "unlisted-bench", the others are listed), in the
-- file's order, round robin. Counts the responses per class and prints one JSON line.
--   wrk -t1 -c32 -d20s -s proxy_bench.lua http://127.0.0.1:3128/ -- hosts.txt
-- Classes: 2xx carry the origin's X-Host header (the host fetched); refusals carry the host in
-- the error page (squid) or in Location (squidGuard's redirect).

local MARK = "unlisted-bench"
local BLOCK_HOST = "blocked.bench.invalid"
local requests = {}
local count = 0
local next_index = 0

-- per-thread counters (globals, read back by thread:get in done)
ok_unlisted = 0        -- 2xx for an unlisted host: expected
ok_listed = 0          -- 2xx for a listed host: the filter let it through
ok_blockpage = 0       -- 2xx for squidGuard's rewritten block URL: refused
ok_unknown = 0
refused_listed = 0     -- non-2xx naming a listed host: refused
bad_unlisted = 0       -- non-2xx naming an unlisted host: collateral damage
bad_5xx = 0            -- every 5xx
bad_unknown = 0        -- non-2xx naming no host we know

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   for host in io.lines(args[1]) do
      if host ~= "" then
         count = count + 1
         requests[count] = "GET http://" .. host .. "/ HTTP/1.1\r\nHost: " .. host ..
            "\r\nUser-Agent: proxy-bench\r\n\r\n"
      end
   end
end

function request()
   next_index = next_index + 1
   if next_index > count then next_index = 1 end
   return requests[next_index]
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      local host = headers["X-Host"] or headers["x-host"]
      if host == nil then
         ok_unknown = ok_unknown + 1
      elseif host == BLOCK_HOST then
         ok_blockpage = ok_blockpage + 1
      elseif string.find(host, MARK, 1, true) then
         ok_unlisted = ok_unlisted + 1
      else
         ok_listed = ok_listed + 1
      end
      return
   end
   if status >= 500 then bad_5xx = bad_5xx + 1 end
   local text = (headers["Location"] or headers["location"] or "") .. (body or "")
   if string.find(text, MARK, 1, true) then
      bad_unlisted = bad_unlisted + 1
   elseif string.find(text, "http://", 1, true) then
      refused_listed = refused_listed + 1
   else
      bad_unknown = bad_unknown + 1
   end
end

local NAMES = {"ok_unlisted", "ok_listed", "ok_blockpage", "ok_unknown", "refused_listed",
               "bad_unlisted", "bad_5xx", "bad_unknown"}

function done(summary, latency, requests_stats)
   local totals = {}
   for _, name in ipairs(NAMES) do totals[name] = 0 end
   for _, thread in ipairs(threads) do
      for _, name in ipairs(NAMES) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   local parts = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"errors":%d', e.connect + e.read + e.write + e.timeout),
      string.format('"non2xx3xx":%d', e.status),
      string.format('"p50_us":%d', latency:percentile(50)),
      string.format('"p99_us":%d', latency:percentile(99)),
   }
   for _, name in ipairs(NAMES) do
      table.insert(parts, string.format('"%s":%d', name, totals[name]))
   end
   io.write("BENCH-JSON {" .. table.concat(parts, ",") .. "}\n")
end
