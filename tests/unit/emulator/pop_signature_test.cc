#include "tests/emulator/pop_signature.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/signature_vectors.h"
#include "tests/common/status_matchers.h"

// The emulator's verifier reaching Alibaba's published vectors on its own:
// this test links no sidecar signing code.
namespace credsync::emulator::pop {
namespace {

namespace vectors = ::credsync::testing::signature_vectors;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The wire request the V3 doc example describes, as the emulator parses it.
ApiRequest acs3DocRequest() {
  auto request = parseApiRequest(
      "POST", "/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
      vectors::acs3DocHeaders(), "");
  EXPECT_THAT(request, IsOk());
  return *request;
}

std::vector<std::string> docSignedHeaders() {
  auto authorization = parseAcs3Authorization(vectors::kAcs3DocAuthorization);
  EXPECT_THAT(authorization, IsOk());
  return authorization->signed_headers;
}

// ---------------------------------------------------------------------------
// RPC

// Verifies the "Request signatures" doc example, GET and POST.
TEST(RpcVerifierTest, ReachesOfficialDocVector) {
  const std::string get = rpcStringToSign("GET", vectors::rpcDocParams());
  EXPECT_EQ(get, vectors::kRpcDocGetStringToSign);
  EXPECT_EQ(rpcExpectedSignature(vectors::kRpcDocSecret, get), vectors::kRpcDocGetSignature);
  EXPECT_EQ(rpcExpectedSignature(vectors::kRpcDocSecret,
                                 rpcStringToSign("POST", vectors::rpcDocParams())),
            vectors::kRpcDocPostSignature);
}

// Verifies the doc example arriving as a GET query string: the Signature
// parameter is left out and the percent-encoded Timestamp decodes first.
TEST(RpcVerifierTest, ReachesDocVectorFromTheWire) {
  auto request = parseApiRequest(
      "GET",
      "/?Timestamp=2016-02-23T12%3A46%3A24Z&Format=XML&AccessKeyId=testid&Action=DescribeRegions"
      "&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
      "&Version=2014-05-26&SignatureVersion=1.0&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D",
      {}, "");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(*request->param("Signature"), vectors::kRpcDocGetSignature);
  const std::string string_to_sign = rpcStringToSign(request->method, request->params);
  EXPECT_EQ(string_to_sign, vectors::kRpcDocGetStringToSign);
  EXPECT_TRUE(signatureMatches(rpcExpectedSignature(vectors::kRpcDocSecret, string_to_sign),
                               *request->param("Signature")));
}

// Verifies the alibaba-cloud-sdk-go composer vectors, with and without a
// security token (empty values stay as "k=", a space is %2520).
TEST(RpcVerifierTest, ReachesGoComposerVectors) {
  vectors::ParamMap params = vectors::rpcGoComposerParams();
  const std::string string_to_sign = rpcStringToSign("GET", params);
  EXPECT_EQ(string_to_sign, vectors::kRpcGoComposerStringToSign);
  EXPECT_EQ(rpcExpectedSignature(vectors::kRpcGoComposerSecret, string_to_sign),
            vectors::kRpcGoComposerSignature);
  params["SecurityToken"] = vectors::kRpcGoComposerSecurityToken;
  EXPECT_EQ(rpcExpectedSignature(vectors::kRpcGoComposerSecret, rpcStringToSign("GET", params)),
            vectors::kRpcGoComposerWithTokenSignature);
}

// Verifies the tea rpc-util / openapi-util vector.
TEST(RpcVerifierTest, ReachesTeaUtilVector) {
  const std::string string_to_sign = rpcStringToSign("GET", vectors::rpcTeaUtilParams());
  EXPECT_EQ(string_to_sign, vectors::kRpcTeaUtilStringToSign);
  EXPECT_EQ(rpcExpectedSignature(vectors::kRpcTeaUtilSecret, string_to_sign),
            vectors::kRpcTeaUtilSignature);
}

// Verifies that a changed value, method, secret or signature no longer
// matches the doc vector.
TEST(RpcVerifierTest, RefusesTamperedInputs) {
  vectors::ParamMap tampered = vectors::rpcDocParams();
  tampered["Action"] = "DescribeInstances";
  EXPECT_FALSE(signatureMatches(
      rpcExpectedSignature(vectors::kRpcDocSecret, rpcStringToSign("GET", tampered)),
      vectors::kRpcDocGetSignature));
  EXPECT_FALSE(signatureMatches(
      rpcExpectedSignature(vectors::kRpcDocSecret, rpcStringToSign("PUT", vectors::rpcDocParams())),
      vectors::kRpcDocGetSignature));
  EXPECT_FALSE(signatureMatches(rpcExpectedSignature("testsecreT", vectors::kRpcDocGetStringToSign),
                                vectors::kRpcDocGetSignature));
  const std::string expected =
      rpcExpectedSignature(vectors::kRpcDocSecret, vectors::kRpcDocGetStringToSign);
  EXPECT_FALSE(signatureMatches(expected, "OLeaidS1JvxuMvnyHOwuJ+uX5qY"));  // padding cut
  EXPECT_FALSE(signatureMatches(expected, ""));
  EXPECT_FALSE(signatureMatches("", ""));
}

// ---------------------------------------------------------------------------
// ACS3

// Verifies the V3 doc example from the wire: canonical request, string to
// sign and signature, and that the Authorization header reads back.
TEST(Acs3VerifierTest, ReachesOfficialDocVector) {
  auto authorization = parseAcs3Authorization(vectors::kAcs3DocAuthorization);
  ASSERT_THAT(authorization, IsOk());
  EXPECT_EQ(authorization->algorithm, kAcs3Algorithm);
  EXPECT_EQ(authorization->access_key_id, vectors::kAcs3DocAccessKeyId);
  EXPECT_EQ(authorization->signature, vectors::kAcs3DocSignature);
  const std::string canonical = acs3CanonicalRequest(
      acs3DocRequest(), authorization->signed_headers, vectors::kAcs3EmptyPayloadHash);
  EXPECT_EQ(canonical, vectors::kAcs3DocCanonicalRequest);
  const std::string string_to_sign = acs3StringToSign(canonical);
  EXPECT_EQ(string_to_sign, vectors::kAcs3DocStringToSign);
  EXPECT_EQ(acs3ExpectedSignature(vectors::kAcs3DocSecret, string_to_sign),
            vectors::kAcs3DocSignature);
}

// Verifies the openapi-util vectors: header names of two cases merge into
// one sorted value list, an empty query value stays "empty=", and the
// method is used as sent, even empty.
TEST(Acs3VerifierTest, ReachesOpenApiUtilVectors) {
  auto get = parseApiRequest("GET", "/?test=ok&empty=", vectors::acs3OpenApiUtilHeaders(), "");
  ASSERT_THAT(get, IsOk());
  auto authorization = parseAcs3Authorization(vectors::kAcs3OpenApiUtilGetAuthorization);
  ASSERT_THAT(authorization, IsOk());
  const std::string canonical = acs3CanonicalRequest(*get, authorization->signed_headers,
                                                     vectors::kAcs3OpenApiUtilPayloadHash);
  EXPECT_EQ(canonical, vectors::kAcs3OpenApiUtilGetCanonicalRequest);
  EXPECT_TRUE(signatureMatches(
      acs3ExpectedSignature(vectors::kAcs3OpenApiUtilSecret, acs3StringToSign(canonical)),
      authorization->signature));

  ApiRequest empty_method = *get;
  empty_method.method = "";
  EXPECT_EQ(acs3ExpectedSignature(
                vectors::kAcs3OpenApiUtilSecret,
                acs3StringToSign(acs3CanonicalRequest(empty_method, {"x-acs-test"},
                                                      vectors::kAcs3OpenApiUtilPayloadHash))),
            vectors::kAcs3OpenApiUtilEmptyMethodSignature);
}

// Verifies that a tampered query value, header value, body hash or secret,
// and a signed header gone missing, each change the doc vector's result.
TEST(Acs3VerifierTest, RefusesTamperedInputs) {
  const std::vector<std::string> signed_headers = docSignedHeaders();
  auto matches = [&](const ApiRequest& request, absl::string_view payload_hash,
                     absl::string_view secret) {
    return signatureMatches(
        acs3ExpectedSignature(
            secret, acs3StringToSign(acs3CanonicalRequest(request, signed_headers, payload_hash))),
        vectors::kAcs3DocSignature);
  };
  EXPECT_TRUE(matches(acs3DocRequest(), vectors::kAcs3EmptyPayloadHash, vectors::kAcs3DocSecret));

  ApiRequest query = acs3DocRequest();
  query.query["RegionId"] = "cn-beijing";
  EXPECT_FALSE(matches(query, vectors::kAcs3EmptyPayloadHash, vectors::kAcs3DocSecret));

  ApiRequest header = acs3DocRequest();
  for (auto& [name, value] : header.headers) {
    if (name == "x-acs-action") value = "DeleteInstance";
  }
  EXPECT_FALSE(matches(header, vectors::kAcs3EmptyPayloadHash, vectors::kAcs3DocSecret));

  ApiRequest missing = acs3DocRequest();
  missing.headers.erase(missing.headers.begin());  // host
  EXPECT_FALSE(matches(missing, vectors::kAcs3EmptyPayloadHash, vectors::kAcs3DocSecret));

  EXPECT_FALSE(
      matches(acs3DocRequest(), vectors::kAcs3OpenApiUtilPayloadHash, vectors::kAcs3DocSecret));
  EXPECT_FALSE(matches(acs3DocRequest(), vectors::kAcs3EmptyPayloadHash, "YourAccessKeySecreT"));
}

// Verifies that unsigned headers (added by the HTTP library after signing)
// do not enter the canonical request.
TEST(Acs3VerifierTest, IgnoresUnsignedHeaders) {
  ApiRequest request = acs3DocRequest();
  request.headers.emplace_back("content-length", "0");
  request.headers.emplace_back("x-acs-extra", "added later");
  EXPECT_EQ(acs3CanonicalRequest(request, docSignedHeaders(), vectors::kAcs3EmptyPayloadHash),
            vectors::kAcs3DocCanonicalRequest);
}

// Verifies header values are trimmed and a repeated name's values sorted.
TEST(Acs3VerifierTest, TrimsAndSortsRepeatedHeaderValues) {
  auto request =
      parseApiRequest("GET", "/", {{"X-Acs-Meta", "  zeta \t"}, {"x-acs-meta", "alpha"}}, "");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(acs3CanonicalRequest(*request, {"x-acs-meta"}, "h"),
            "GET\n/\n\nx-acs-meta:alpha,zeta\n\nx-acs-meta\nh");
}

// Verifies the parts may come in any order with spaces around the commas,
// and that the signed names come back lowercased, in the order sent.
TEST(Acs3AuthorizationTest, ReadsPartsInAnyOrder) {
  auto parsed = parseAcs3Authorization(
      "ACS3-HMAC-SHA256 SignedHeaders=Host;X-Acs-Action ,Signature=0f1e , Credential=LTAI5tK");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->access_key_id, "LTAI5tK");
  EXPECT_THAT(parsed->signed_headers, ElementsAre("host", "x-acs-action"));
  EXPECT_EQ(parsed->signature, "0f1e");
  auto none_signed =
      parseAcs3Authorization("ACS3-HMAC-SHA256 Credential=k,SignedHeaders=,Signature=s");
  ASSERT_THAT(none_signed, IsOk());
  EXPECT_TRUE(none_signed->signed_headers.empty());
}

// Verifies the doc example's header, broken one way at a time, is refused
// with a message saying how.
TEST(Acs3AuthorizationTest, RefusesBrokenHeaders) {
  const std::string doc = vectors::kAcs3DocAuthorization;
  auto without = [&](const std::string& part) {
    std::string header = doc;
    header.erase(header.find(part), part.size());
    return header;
  };
  const std::string credential = "Credential=YourAccessKeyId,";
  const std::string signature = ",Signature=" + std::string(vectors::kAcs3DocSignature);
  const std::pair<std::string, const char*> cases[] = {
      {"ACS3-HMAC-SHA256", "expected '<algorithm>"},
      {doc.substr(doc.find(' ') + 1), "expected '<algorithm>"},
      {without(credential), "no Credential"},
      {without("YourAccessKeyId"), "no Credential"},
      {without(signature), "no Signature"},
      {without(vectors::kAcs3DocSignature), "no Signature"},
      {without("SignedHeaders=" + std::string(vectors::kAcs3DocSignedHeaders) + ","),
       "no SignedHeaders"},
      {doc + ",Region=cn-shanghai", "unknown part 'Region'"},
      {doc + signature, "Signature given twice"},
      {doc + ",", "'' is not name=value"},
  };
  for (const auto& [header, message] : cases) {
    EXPECT_THAT(parseAcs3Authorization(header),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << header;
  }
  std::string empty_name = doc;
  empty_name.insert(empty_name.find("host;") + 5, ";");
  EXPECT_THAT(parseAcs3Authorization(empty_name),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty name")));
}

}  // namespace
}  // namespace credsync::emulator::pop
