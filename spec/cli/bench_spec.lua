-- peernet-host bench against a real serve: the shape of its output (text
-- and --json), calls and sends, and its refusals. Never a timing: only
-- that the figures are there and add up.
local uv = require "luv"
local C = require "support.cli"

local function dd(dir, ...) return { "--data-dir", dir, ... } end

local function decode_json(s)
  local v, _, e = require("dkjson").decode(s)
  assert(v ~= nil, "not JSON: " .. tostring(s) .. " (" .. tostring(e) .. ")")
  return v
end

describe("peernet-host bench", function()
  local tmp, dirA, keyA, dirB, keyB, serve, addr
  local got -- sends counted by the serving script, read back with a call

  setup(function()
    tmp = H.tmpdir()
    dirA, keyA = C.init(tmp .. "/a")
    dirB, keyB = C.init(tmp .. "/b")
    assert.equal(0, (C.run(dd(dirA, "trust", "add", keyB))))
    assert.equal(0, (C.run(dd(dirB, "trust", "add", keyA))))
    local hd = tmp .. "/h"
    os.execute("mkdir -p " .. H.q(hd))
    H.write_file(hd .. "/echo.lua", [[
local n = 0
peernet.expose("echo", function(_, args) return args end)
peernet.expose("fail", function() error("no") end)
peernet.expose("note", function() n = n + 1 end)
peernet.expose("count", function() return n end)
]])
    serve = C.spawn(dd(dirA, "serve", "--no-discovery", "--listen", "127.0.0.1:0", "--handlers", hd))
    local port = C.expect(serve, "serving %x+ on 127%.0%.0%.1:(%d+)\n")
    addr = "127.0.0.1:" .. port
    got = function()
      local code, out = C.run(dd(dirB, "call", keyA, "count", "--addr", addr))
      assert.equal(0, code)
      return tonumber(out)
    end
  end)

  teardown(function()
    C.reap()
    for _ = 1, 10 do uv.run("nowait") end
    H.rmdir(tmp)
  end)

  it("is listed in --help with its usage", function()
    local code, out = C.run { "--help" }
    assert.equal(0, code)
    assert.matches("\n  bench ", out)
    code, out = C.run { "bench", "--help" }
    assert.equal(0, code)
    assert.matches("usage: peernet%-host bench PEER HANDLE", out)
  end)

  it("prints calls/s and the latency percentiles", function()
    local code, out, err = C.run(dd(dirB, "bench", keyA, "echo", "--addr", addr, "--duration", "1",
      "--inflight", "4", "--size", "64"))
    assert.equal(0, code, err)
    assert.matches("^calls/s: %d+ %(%d+ in %d+%.%d+ s, 4 in flight%)\n", out)
    assert.matches("\nlatency: p50 [%d.]+ us  p99 [%d.]+ us  p99%.9 [%d.]+ us  %(min [%d.]+ us, max [%d.]+ us, mean [%d.]+ us%)\n", out)
    assert.matches("\nanswers: %d+ ok, 0 error, 0 timed out, 0 closed\n", out)
  end)

  it("--json gives the same figures as one object, ordered percentiles", function()
    local code, out, err = C.run(dd(dirB, "--json", "bench", keyA, "echo", '"hi"', "--addr", addr,
      "--duration", "1", "--inflight", "2"))
    assert.equal(0, code, err)
    local j = decode_json(out)
    assert.equal("calls", j.mode)
    assert.equal(2, j.inflight)
    assert.is_true(j.ok > 0)
    assert.equal(0, j.errors)
    assert.is_true(j.per_s > 0 and j.seconds > 0)
    assert.is_true(j.min_us <= j.p50_us and j.p50_us <= j.p99_us and j.p99_us <= j.p999_us)
    assert.is_true(j.p999_us <= j.max_us * (1 + 1 / 32))
  end)

  it("counts {error, _} answers apart", function()
    local code, out, err = C.run(dd(dirB, "--json", "bench", keyA, "fail", "--addr", addr, "--duration", "1"))
    assert.equal(0, code, err)
    local j = decode_json(out)
    assert.equal(0, j.ok)
    assert.is_true(j.errors > 0)
  end)

  it("--send streams one-way sends the peer reads", function()
    local before = got()
    local code, out, err = C.run(dd(dirB, "--json", "bench", keyA, "note", "--addr", addr,
      "--duration", "1", "--send"))
    assert.equal(0, code, err)
    local j = decode_json(out)
    assert.equal("sends", j.mode)
    assert.is_true(j.ok > 0)
    assert.is_nil(j.p50_us)
    -- The sends were taken by the socket; the script counts what its host
    -- hands it (past max_calls_in_flight waiting sends a host drops, and
    -- counts them: docs/host.md).
    local n = got() - before
    assert.is_true(n > 0 and n <= j.ok, n)
  end)

  it("refuses bad options, ARGS with --size, and a data dir whose host is running", function()
    local code, _, err = C.run(dd(dirB, "bench", keyA, "echo", "--inflight", "0"))
    assert.equal(2, code)
    assert.matches("%-%-inflight must be", err)
    code, _, err = C.run(dd(dirB, "bench", keyA, "echo", "1", "--size", "8"))
    assert.equal(2, code)
    assert.matches("ARGS or %-%-size", err)
    code, _, err = C.run(dd(dirA, "bench", keyB, "echo", "--addr", "127.0.0.1:1"))
    assert.equal(1, code)
    assert.matches("a host is running", err)
  end)
end)
