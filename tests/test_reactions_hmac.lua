-- The webhooks' HMAC-SHA256 (csrc/hmac.c, OpenSSL's libcrypto): known vectors, the openssl command
-- line, and the constant-time check a receiver uses.
local lu = require("luaunit")
local core = require("leadq.core")
local helpers = require("helpers")

local M = {}

M.TestHmac = {}

function M.TestHmac.test_rfc4231_vectors()
  -- RFC 4231, test cases 2 and 6 (a key longer than the block size is hashed first)
  lu.assertEquals(core.hmac_sha256("Jefe", "what do ya want for nothing?"),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
  lu.assertEquals(core.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First"),
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
  lu.assertEquals(core.hmac_sha256("", ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
end

function M.TestHmac.test_agrees_with_the_openssl_command()
  local body = '{"lead":"L-1","to":"mql","nul":"a\0b"}'
  local file = helpers.temp_file(body)
  local p = io.popen("openssl dgst -sha256 -hmac 's3cret' < " .. file)
  local out = p:read("*a")
  p:close()
  helpers.remove(file)
  lu.assertEquals(out:match("= (%x+)"), core.hmac_sha256("s3cret", body))
end

function M.TestHmac.test_verify()
  local mac = core.hmac_sha256("k", "m")
  lu.assertTrue(core.hmac_sha256_verify("k", "m", mac))
  lu.assertFalse(core.hmac_sha256_verify("k", "m2", mac))
  lu.assertFalse(core.hmac_sha256_verify("k", "m", mac:sub(1, 63)))
  lu.assertFalse(core.hmac_sha256_verify("k", "m", mac:upper()))
  lu.assertErrorMsgContains("bad argument #2 to '", core.hmac_sha256, "k")
  lu.assertErrorMsgContains("(string expected, got no value)", core.hmac_sha256, "k")
end

return M
