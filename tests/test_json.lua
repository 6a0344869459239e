-- leadq.json: the strict decoder and the encoder the OpenResty service speaks.
local lu = require("luaunit")
local json = require("leadq.json")

local M = {}

M.TestJson = {}

function M.TestJson.test_decodes_every_kind_of_value()
  local v = assert(json.decode(' {"a": 1, "b": [true, false, null, -2.5e2], "c": {"d": "x"}, "e": []} '))
  lu.assertEquals(v.a, 1)
  lu.assertEquals(v.b[1], true)
  lu.assertEquals(v.b[2], false)
  lu.assertIs(v.b[3], json.null)
  lu.assertEquals(v.b[4], -250)
  lu.assertEquals(v.c.d, "x")
  lu.assertEquals(#v.e, 0)
  lu.assertEquals(json.encode(v.e), "[]")   -- an empty array stays an array
end

function M.TestJson.test_decodes_escapes_and_utf8()
  lu.assertEquals(json.decode('"a\\"b\\\\c\\/d\\n\\t\\u00e9"'), 'a"b\\c/d\n\té')
  lu.assertEquals(json.decode('"\\ud83d\\ude00"'), "\240\159\152\128")
  lu.assertEquals(json.decode('"caf\195\169"'), "caf\195\169")
end

local malformed = {
  { "", "malformed JSON at byte 1: unexpected end of input" },
  { "{", "malformed JSON at byte 2: expected a string key in object" },
  { '{"a":1,}', "malformed JSON at byte 8: expected a string key in object" },
  { '{"a" 1}', "malformed JSON at byte 6: expected ':' after object key" },
  { "[1 2]", "malformed JSON at byte 4: expected ',' or ']' in array" },
  { "01", "malformed JSON at byte 1: leading zero in number" },
  { "1.", "malformed JSON at byte 2: digits expected after '.'" },
  { "1e", "malformed JSON at byte 2: digits expected in exponent" },
  { "1e999", "malformed JSON at byte 1: number out of range" },
  { "1 2", "malformed JSON at byte 3: unexpected data after the value" },
  { "nul", "malformed JSON at byte 1: unexpected character" },
  { "'a'", "malformed JSON at byte 1: unexpected character" },
  { '"abc', "malformed JSON at byte 5: unterminated string" },
  { '"a\nb"', "malformed JSON at byte 3: control character in string" },
  { '"\\x"', "malformed JSON at byte 2: bad escape in string" },
  { '"\\u12g4"', "malformed JSON at byte 2: bad \\u escape" },
  { '"\\ud800"', "malformed JSON at byte 2: lone surrogate in \\u escape" },
  { '"\\udc00"', "malformed JSON at byte 2: lone surrogate in \\u escape" },
  { '"\255"', "malformed JSON at byte 2: invalid UTF-8 in string" },
  { '"\192\175"', "malformed JSON at byte 2: invalid UTF-8 in string" },   -- overlong '/'
  { '"\237\160\128"', "malformed JSON at byte 2: invalid UTF-8 in string" },   -- encoded surrogate
  { '{"a":1,"a":2}', "malformed JSON at byte 8: duplicate key 'a' in object" },
}

function M.TestJson.test_refuses_malformed_text_with_the_byte()
  for _, case in ipairs(malformed) do
    local v, err = json.decode(case[1])
    lu.assertNil(v, case[1])
    lu.assertEquals(err, case[2])
  end
end

function M.TestJson.test_bounds_nesting()
  lu.assertNotNil(json.decode(string.rep("[", 64) .. string.rep("]", 64)))
  local v, err = json.decode(string.rep("[", 65) .. string.rep("]", 65))
  lu.assertNil(v)
  lu.assertEquals(err, "malformed JSON at byte 65: nested deeper than 64 levels")
  lu.assertNil((json.decode('[[1]]', 1)))
end

function M.TestJson.test_misuse_raises()
  lu.assertErrorMsgContains("bad argument #1 to 'decode' (string expected, got nil)", json.decode)
  lu.assertErrorMsgContains("cannot encode a function", json.encode, { f = print })
  lu.assertErrorMsgContains("cannot encode NaN", json.encode, 0 / 0)
  lu.assertErrorMsgContains("cannot encode an infinite number", json.encode, { x = math.huge })
  lu.assertErrorMsgContains("object key must be a string, got boolean", json.encode, { [true] = 1 })
  local t = {}
  t.self = t
  lu.assertErrorMsgContains("nested deeper than 100 levels (a cycle?)", json.encode, t)
  lu.assertErrorMsgContains("sparse array (index 2 is nil)", json.encode, { 1, nil, 3 })
end

function M.TestJson.test_encodes_sorted_and_round_trips()
  lu.assertEquals(json.encode({ b = 1, a = { 1, 2.5, "x" }, c = json.null, d = false }),
    '{"a":[1,2.5,"x"],"b":1,"c":null,"d":false}')
  lu.assertEquals(json.encode({}), "{}")
  lu.assertEquals(json.encode(json.array()), "[]")
  lu.assertEquals(json.encode('q"\\\n\1'), '"q\\"\\\\\\n\\u0001"')
  lu.assertEquals(json.encode(123456789012), "123456789012")
  lu.assertEquals(json.encode(0.1), "0.1")
  lu.assertEquals(json.encode(1 / 3), "0.33333333333333331")
  lu.assertEquals(json.decode(json.encode(100.99970947003966)), 100.99970947003966)
  lu.assertEquals(table.concat(json.encode_parts({ a = { 1, "x" } })), '{"a":[1,"x"]}')
  local text = '{"lead":"L-1","tags":["a","b"],"type":"pricing_view","value":3}'
  lu.assertEquals(json.encode(assert(json.decode(text))), text)
end

-- Lua 5.3 and 5.4 read "9007199254740993" as an integer, and the encoder wrote it through a double:
-- 9007199254740992. Integers come back as written; under LuaJIT every number is a double.
function M.TestJson.test_integers_past_2_53_round_trip()
  for _, text in ipairs({ "9007199254740993", "-9007199254740993", "9223372036854775807", "-9223372036854775808",
      "[1,9007199254740993]", '{"n":1234567890123456789}' }) do
    local v = assert(json.decode(text))
    if math.type then
      lu.assertEquals(json.encode(v), text)
    else
      lu.assertEquals(json.decode(json.encode(v)), v)   -- the double survives
    end
  end
  lu.assertEquals(json.encode(2 ^ 63), "9.2233720368547758e+18")   -- a float stays a float
  lu.assertEquals(json.encode(1e2), "100")
end

-- RFC 8259 asks only U+0000 to U+001F to be escaped: DEL (127) in a string is valid JSON.
function M.TestJson.test_unescaped_del_is_accepted()
  lu.assertEquals(json.decode('"a\127b"'), "a\127b")
  lu.assertEquals(json.decode('{"k":"x\127","\127":1}'), { k = "x\127", ["\127"] = 1 })
  lu.assertEquals(json.decode('"caf\195\169\127"'), "caf\195\169\127")
  lu.assertEquals(json.decode(json.encode("a\127b")), "a\127b")
  local v, err = json.decode('"a\31b"')
  lu.assertNil(v)
  lu.assertEquals(err, "malformed JSON at byte 3: control character in string")
end

-- Compact flat objects take a shorter way than the rest; a leading space sends the same text the
-- general way: both must give the same value, or both refuse it.
function M.TestJson.test_compact_flat_objects_decode_as_any_text_does()
  local texts = {
    '{"lead":"L-1","type":"pricing_view"}', '{"lead":"L-1","type":"page_view","time":1795000000,"value":-3}',
    '{"a":0}', '{"a":-0}', '{"a":10,"b":"","c":"x y"}', '{"a":' .. string.rep("9", 400) .. '}',
    '{"a":1.5}', '{"a":1e3}', '{"a":01}', '{"a":-}', '{"a":true}', '{"a":null}', '{"a":[1]}', '{"a":{"b":1}}',
    '{"a":"\\u00e9"}', '{"a":"caf\195\169"}', '{"a":"\1"}', '{"a":1,"a":2}', '{"a":1,}', '{"a":1}x',
    '{"a":1', '{"a":"x', '{"a" :1}', '{"a":1 }', '{}', '{"":1}', '{"a":"\127"}', '{"a":12,"b":-7}',
    '{"a":123}', '{"a":-01}', '{"a":0,"b":1}', '{"a":-0.5}', '{"a":1,"b"}', '{"a":1,"b":}', '{"a"}', '{"a":}',
  }
  -- And texts made of pieces of those, at random (the same pieces every run).
  local pieces = { '{', '}', '"a"', '"b"', '"lead"', ':', ',', '"x"', '"L-1"', '0', '-', '12', '.5', 'e3', ' ',
    'null', '"\\n"', '[', ']', '"' }
  local seed = 7
  for _ = 1, 3000 do
    local parts = { "{" }
    seed = (seed * 1103515245 + 12345) % 2147483648
    for j = 2, 2 + seed % 9 do
      seed = (seed * 1103515245 + 12345) % 2147483648
      parts[j] = pieces[seed % #pieces + 1]
    end
    texts[#texts + 1] = table.concat(parts)
  end
  for _, text in ipairs(texts) do
    local fast, fast_err = json.decode(text)
    local general, general_err = json.decode(" " .. text)
    lu.assertEquals(fast, general, text)
    lu.assertEquals(fast_err == nil, general_err == nil, text)
    if fast then lu.assertNil(getmetatable(fast), text) end
  end
  lu.assertEquals(json.decode('{"lead":"L-1","n":-12}'), { lead = "L-1", n = -12 })
  lu.assertEquals(select(2, json.decode('{"a":1,"a":2}')), "malformed JSON at byte 8: duplicate key 'a' in object")
  lu.assertEquals(select(2, json.decode('{"a":' .. string.rep("9", 400) .. '}')),
    "malformed JSON at byte 6: number out of range")
end

return M
