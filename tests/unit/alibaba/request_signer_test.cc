#include "sidecar/alibaba/request_signer.h"

#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/common/crypto.h"
#include "tests/common/status_matchers.h"

// The golden values below come from the official V3 doc vector (ACS3) and from
// an independent Python implementation of alibaba-facts.md section 4 (RPC and
// the STS variants); every test also re-verifies the signature by recomputing
// it from the request as sent, the way the gateway does.
namespace credsync::alibaba {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

absl::Time utc(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

// All values of a header, compared case-insensitively by name.
std::vector<std::string> headerValues(const http::Request& request, absl::string_view name) {
  std::vector<std::string> values;
  for (const auto& [header, value] : request.headers) {
    if (absl::EqualsIgnoreCase(header, name)) values.push_back(value);
  }
  return values;
}

std::optional<std::string> header(const http::Request& request, absl::string_view name) {
  const std::vector<std::string> values = headerValues(request, name);
  EXPECT_LE(values.size(), 1u) << "header sent twice: " << name;
  if (values.empty()) return std::nullopt;
  return values.front();
}

std::vector<std::string> headerNames(const http::Request& request) {
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers) names.push_back(name);
  return names;
}

Params queryOf(const http::Request& request) {
  const size_t question = request.url.find('?');
  if (question == std::string::npos) return {};
  auto params = parseQueryString(absl::string_view(request.url).substr(question + 1));
  EXPECT_THAT(params, IsOk());
  return params.ok() ? *params : Params{};
}

// Recomputes the ACS3 signature from the request as a gateway would: the
// query from the URL, the headers named in SignedHeaders, the payload hash.
std::string recomputeAcs3Signature(const http::Request& request, absl::string_view secret) {
  auto authorization = acs3::parseAuthorizationHeader(header(request, "Authorization").value());
  EXPECT_THAT(authorization, IsOk());
  acs3::CanonicalRequestInput input;
  input.method = request.method;
  input.path = "/";
  input.query = queryOf(request);
  for (const std::string& name : authorization->signed_headers) {
    for (const std::string& value : headerValues(request, name)) {
      input.headers.emplace_back(name, value);
    }
  }
  input.hashed_payload = crypto::hexLower(crypto::sha256(request.body));
  return acs3::signature(secret, acs3::stringToSign(acs3::canonicalRequest(input).text));
}

// Recomputes the RPC signature over query and form body together.
std::string recomputeRpcSignature(const http::Request& request, absl::string_view secret) {
  Params params = queryOf(request);
  auto form = parseQueryString(request.body);
  EXPECT_THAT(form, IsOk());
  params.insert(form->begin(), form->end());
  return rpc::signature(request.method, params, secret);
}

AccessKeyCredentials permanentKey(std::string id, std::string secret) {
  AccessKeyCredentials credentials;
  credentials.access_key_id = std::move(id);
  credentials.access_key_secret = SecretString(std::move(secret));
  return credentials;
}

AccessKeyCredentials stsKey() {
  AccessKeyCredentials credentials = permanentKey("STS.NTestKeyId", "stsSecret");
  credentials.security_token = SecretString("CAIS+token/with=specials");
  return credentials;
}

RpcCall kmsCall() {
  RpcCall call;
  call.endpoint = "https://kms.cn-hangzhou.aliyuncs.com";
  call.action = "GetSecretValue";
  call.version = "2016-01-20";
  call.params = {{"SecretName", "acs/ram/user/demo app"}, {"VersionStage", "ACSCurrent"}};
  return call;
}

// ---------------------------------------------------------------------------
// ACS3-HMAC-SHA256

// Verifies that the built request reproduces the official V3 doc vector exactly.
TEST(BuildSignedRequestAcs3Test, ReproducesOfficialDocVector) {
  RpcCall call;
  call.endpoint = "https://ecs.cn-shanghai.aliyuncs.com";
  call.action = "RunInstances";
  call.version = "2014-05-26";
  call.params = {{"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"},
                 {"RegionId", "cn-shanghai"}};
  const AccessKeyCredentials credentials = permanentKey("YourAccessKeyId", "YourAccessKeySecret");

  auto request =
      buildSignedRequest(call, &credentials, SignatureScheme::kAcs3HmacSha256,
                         utc(2023, 10, 26, 10, 22, 32), "3156853299f313e23d1673dc12e1703d");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url,
            "https://ecs.cn-shanghai.aliyuncs.com/"
            "?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai");
  EXPECT_EQ(request->body, "");
  EXPECT_EQ(request->headers,
            (http::Headers{
                {"host", "ecs.cn-shanghai.aliyuncs.com"},
                {"x-acs-action", "RunInstances"},
                {"x-acs-version", "2014-05-26"},
                {"x-acs-date", "2023-10-26T10:22:32Z"},
                {"x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"},
                {"x-acs-content-sha256", std::string(kEmptySha256)},
                {"accept", "application/json"},
                {"Authorization",
                 "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
                 "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                 "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"},
            }));
}

// Verifies the STS golden output: token and key id headers are sent and signed.
TEST(BuildSignedRequestAcs3Test, SignsSecurityTokenHeaders) {
  RpcCall call = kmsCall();
  call.endpoint = "https://127.0.0.1:8443/";
  const AccessKeyCredentials credentials = stsKey();

  auto request =
      buildSignedRequest(call, &credentials, SignatureScheme::kAcs3HmacSha256,
                         utc(2026, 1, 1, 0, 0, 0), "0b9f8ac6-7a1c-4f30-9f5e-6f1f4b8c2d11");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(
      request->url,
      "https://127.0.0.1:8443/?SecretName=acs%2Fram%2Fuser%2Fdemo%20app&VersionStage=ACSCurrent");
  EXPECT_EQ(header(*request, "host"), "127.0.0.1:8443");
  EXPECT_EQ(header(*request, "x-acs-accesskey-id"), "STS.NTestKeyId");
  EXPECT_EQ(header(*request, "x-acs-security-token"), "CAIS+token/with=specials");
  EXPECT_EQ(header(*request, "Authorization"),
            "ACS3-HMAC-SHA256 Credential=STS.NTestKeyId,SignedHeaders=host;x-acs-accesskey-id;"
            "x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;"
            "x-acs-signature-nonce;x-acs-version,"
            "Signature=cce83a6f6e444c66c08b094652e7ea5ac73f906c37e142fa1e235f522c4be163");
  EXPECT_EQ(recomputeAcs3Signature(*request, "stsSecret"),
            "cce83a6f6e444c66c08b094652e7ea5ac73f906c37e142fa1e235f522c4be163");
}

// Verifies the signature recomputes from the sent request and breaks if token, query or key change.
TEST(BuildSignedRequestAcs3Test, SignatureCoversTokenAndQuery) {
  const AccessKeyCredentials credentials = stsKey();
  auto request = buildSignedRequest(kmsCall(), &credentials, SignatureScheme::kAcs3HmacSha256,
                                    utc(2026, 1, 1, 0, 0, 0), "nonce-1");
  ASSERT_THAT(request, IsOk());
  auto authorization = acs3::parseAuthorizationHeader(*header(*request, "Authorization"));
  ASSERT_THAT(authorization, IsOk());
  EXPECT_EQ(recomputeAcs3Signature(*request, "stsSecret"), authorization->signature);

  http::Request tampered = *request;
  for (auto& [name, value] : tampered.headers) {
    if (name == "x-acs-security-token") value = "CAIS+other";
  }
  EXPECT_NE(recomputeAcs3Signature(tampered, "stsSecret"), authorization->signature);

  tampered = *request;
  absl::StrReplaceAll({{"ACSCurrent", "ACSPrevious"}}, &tampered.url);
  EXPECT_NE(recomputeAcs3Signature(tampered, "stsSecret"), authorization->signature);

  EXPECT_NE(recomputeAcs3Signature(*request, "wrongSecret"), authorization->signature);
}

// Verifies that a permanent key sends neither token nor key id headers.
TEST(BuildSignedRequestAcs3Test, PermanentKeySendsNoTokenHeaders) {
  const AccessKeyCredentials credentials = permanentKey("LTAI.id", "secret");
  auto request = buildSignedRequest(kmsCall(), &credentials, SignatureScheme::kAcs3HmacSha256,
                                    utc(2026, 1, 1, 0, 0, 0), "nonce-2");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(header(*request, "x-acs-security-token"), std::nullopt);
  EXPECT_EQ(header(*request, "x-acs-accesskey-id"), std::nullopt);
  EXPECT_EQ(queryOf(*request), kmsCall().params);
  auto authorization = acs3::parseAuthorizationHeader(*header(*request, "Authorization"));
  ASSERT_THAT(authorization, IsOk());
  EXPECT_EQ(authorization->access_key_id, "LTAI.id");
  EXPECT_THAT(authorization->signed_headers,
              ElementsAre("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                          "x-acs-signature-nonce", "x-acs-version"));
  EXPECT_EQ(recomputeAcs3Signature(*request, "secret"), authorization->signature);
}

// Verifies the anonymous ACS3 call: x-acs-* headers, Format=JSON, no Authorization.
TEST(BuildSignedRequestAcs3Test, AnonymousCallIsUnsigned) {
  RpcCall call;
  call.endpoint = "https://sts.aliyuncs.com";
  call.action = "AssumeRoleWithOIDC";
  call.version = "2015-04-01";
  call.params = {{"RoleArn", "acs:ram::1:role/r"}, {"OIDCToken", "eyJ.a.b"}};
  auto request = buildSignedRequest(call, nullptr, SignatureScheme::kAcs3HmacSha256,
                                    utc(2026, 1, 1, 0, 0, 0), "nonce-3");
  ASSERT_THAT(request, IsOk());
  EXPECT_THAT(headerNames(*request),
              ElementsAre("host", "x-acs-action", "x-acs-version", "x-acs-date",
                          "x-acs-signature-nonce", "x-acs-content-sha256", "accept"));
  EXPECT_EQ(header(*request, "x-acs-action"), "AssumeRoleWithOIDC");
  EXPECT_EQ(
      queryOf(*request),
      (Params{{"Format", "JSON"}, {"OIDCToken", "eyJ.a.b"}, {"RoleArn", "acs:ram::1:role/r"}}));
}

// ---------------------------------------------------------------------------
// RPC HMAC-SHA1

// Verifies the GET golden output: everything, Signature included, in the query.
TEST(BuildSignedRequestRpcTest, GetPutsEverythingInQuery) {
  RpcCall call = kmsCall();
  call.method = "GET";
  const AccessKeyCredentials credentials = permanentKey("testid", "testsecret");
  auto request =
      buildSignedRequest(call, &credentials, SignatureScheme::kRpcHmacSha1,
                         utc(2016, 2, 23, 12, 46, 24), "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->method, "GET");
  EXPECT_EQ(request->url,
            "https://kms.cn-hangzhou.aliyuncs.com/?AccessKeyId=testid&Action=GetSecretValue"
            "&Format=JSON&SecretName=acs%2Fram%2Fuser%2Fdemo%20app"
            "&Signature=ZQjtk8XveCJQxTh9v%2FkWpL0fKbM%3D&SignatureMethod=HMAC-SHA1"
            "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
            "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2016-01-20&VersionStage=ACSCurrent");
  EXPECT_EQ(request->body, "");
  EXPECT_EQ(header(*request, "content-type"), std::nullopt);
  EXPECT_EQ(header(*request, "Authorization"), std::nullopt);
  EXPECT_EQ(recomputeRpcSignature(*request, "testsecret"), "ZQjtk8XveCJQxTh9v/kWpL0fKbM=");
}

// Verifies POST with STS: common params in the query, business params in the body, token signed.
TEST(BuildSignedRequestRpcTest, PostPutsBusinessParamsInFormBody) {
  const AccessKeyCredentials credentials = stsKey();
  auto request =
      buildSignedRequest(kmsCall(), &credentials, SignatureScheme::kRpcHmacSha1,
                         utc(2016, 2, 23, 12, 46, 24), "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url,
            "https://kms.cn-hangzhou.aliyuncs.com/?AccessKeyId=STS.NTestKeyId"
            "&Action=GetSecretValue&Format=JSON&SecurityToken=CAIS%2Btoken%2Fwith%3Dspecials"
            "&Signature=x4nNfGChzZZSh5OmobpCVhWO%2FxM%3D&SignatureMethod=HMAC-SHA1"
            "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
            "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2016-01-20");
  EXPECT_EQ(request->body, "SecretName=acs%2Fram%2Fuser%2Fdemo%20app&VersionStage=ACSCurrent");
  EXPECT_EQ(header(*request, "content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(header(*request, "host"), "kms.cn-hangzhou.aliyuncs.com");
  EXPECT_EQ(header(*request, "x-acs-action"), "GetSecretValue");
  EXPECT_EQ(header(*request, "x-acs-version"), "2016-01-20");
  EXPECT_EQ(recomputeRpcSignature(*request, "stsSecret"), "x4nNfGChzZZSh5OmobpCVhWO/xM=");

  // The token is part of what is signed: dropping it changes the signature.
  Params without_token = queryOf(*request);
  without_token.erase("SecurityToken");
  const Params business = kmsCall().params;
  without_token.insert(business.begin(), business.end());
  EXPECT_NE(rpc::signature("POST", without_token, "stsSecret"), "x4nNfGChzZZSh5OmobpCVhWO/xM=");
}

// Verifies that a POST without business params sends no body and no content type.
TEST(BuildSignedRequestRpcTest, PostWithoutParamsHasNoBody) {
  RpcCall call = kmsCall();
  call.params.clear();
  const AccessKeyCredentials credentials = permanentKey("id", "secret");
  auto request = buildSignedRequest(call, &credentials, SignatureScheme::kRpcHmacSha1,
                                    utc(2026, 1, 1, 0, 0, 0), "nonce-4");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->body, "");
  EXPECT_EQ(header(*request, "content-type"), std::nullopt);
  EXPECT_EQ(recomputeRpcSignature(*request, "secret"), queryOf(*request).at("Signature"));
}

// Verifies the anonymous RPC call: common params but no signature, key id or method.
TEST(BuildSignedRequestRpcTest, AnonymousCallIsUnsigned) {
  RpcCall call;
  call.endpoint = "https://sts.cn-hangzhou.aliyuncs.com";
  call.action = "AssumeRoleWithOIDC";
  call.version = "2015-04-01";
  call.params = {{"RoleArn", "acs:ram::1:role/r"}, {"OIDCToken", "eyJ.a.b"}};
  auto request = buildSignedRequest(call, nullptr, SignatureScheme::kRpcHmacSha1,
                                    utc(2026, 1, 1, 0, 0, 0), "nonce-5");
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(queryOf(*request), (Params{{"Action", "AssumeRoleWithOIDC"},
                                       {"Format", "JSON"},
                                       {"SignatureNonce", "nonce-5"},
                                       {"Timestamp", "2026-01-01T00:00:00Z"},
                                       {"Version", "2015-04-01"}}));
  EXPECT_EQ(*parseQueryString(request->body), call.params);
  EXPECT_EQ(header(*request, "Authorization"), std::nullopt);
}

// Verifies that sub-second parts of the time are dropped from Timestamp and x-acs-date.
TEST(BuildSignedRequestRpcTest, TimestampIsWholeSecondsUtc) {
  const AccessKeyCredentials credentials = permanentKey("id", "secret");
  const absl::Time now = utc(2026, 3, 4, 5, 6, 7) + absl::Milliseconds(999);
  auto rpc_request =
      buildSignedRequest(kmsCall(), &credentials, SignatureScheme::kRpcHmacSha1, now, "n1");
  ASSERT_THAT(rpc_request, IsOk());
  EXPECT_EQ(queryOf(*rpc_request).at("Timestamp"), "2026-03-04T05:06:07Z");
  auto acs3_request =
      buildSignedRequest(kmsCall(), &credentials, SignatureScheme::kAcs3HmacSha256, now, "n2");
  ASSERT_THAT(acs3_request, IsOk());
  EXPECT_EQ(header(*acs3_request, "x-acs-date"), "2026-03-04T05:06:07Z");
}

// ---------------------------------------------------------------------------
// Both schemes

// Verifies that the AccessKeySecret appears nowhere in a built request.
TEST(BuildSignedRequestTest, SecretNeverAppearsInRequest) {
  const AccessKeyCredentials credentials = permanentKey("id", "SuperSecretValue123");
  for (const SignatureScheme scheme :
       {SignatureScheme::kAcs3HmacSha256, SignatureScheme::kRpcHmacSha1}) {
    for (const char* method : {"GET", "POST"}) {
      RpcCall call = kmsCall();
      call.method = method;
      auto request =
          buildSignedRequest(call, &credentials, scheme, utc(2026, 1, 1, 0, 0, 0), "nonce");
      ASSERT_THAT(request, IsOk());
      std::string everything = request->url + request->body;
      for (const auto& [name, value] : request->headers) absl::StrAppend(&everything, name, value);
      EXPECT_THAT(everything, Not(HasSubstr("SuperSecretValue123")));
    }
  }
}

// Verifies the accepted endpoint forms: trailing slash, port, IPv6, scheme case.
TEST(ParseEndpointTest, AcceptsHostPortAndIpv6) {
  const std::tuple<const char*, const char*, const char*> cases[] = {
      {"https://kms.cn-hangzhou.aliyuncs.com", "https", "kms.cn-hangzhou.aliyuncs.com"},
      {"https://kms.cn-hangzhou.aliyuncs.com/", "https", "kms.cn-hangzhou.aliyuncs.com"},
      {"HTTP://127.0.0.1:8080", "http", "127.0.0.1:8080"},
      {"https://[::1]:8443/", "https", "[::1]:8443"},
      {"https://[fe80::1]", "https", "[fe80::1]"},
      {"http://localhost:65535", "http", "localhost:65535"},
  };
  for (const auto& [input, scheme, host] : cases) {
    auto endpoint = parseEndpoint(input);
    ASSERT_THAT(endpoint, IsOk()) << input;
    EXPECT_EQ(endpoint->scheme, scheme);
    EXPECT_EQ(endpoint->host, host);
  }
}

// Verifies that bad endpoints are INVALID_ARGUMENT naming the problem.
TEST(ParseEndpointTest, RejectsMalformedEndpoints) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "http:// or https://"},
      {"kms.cn-hangzhou.aliyuncs.com", "http:// or https://"},
      {"ftp://kms.aliyuncs.com", "http:// or https://"},
      {"https:/kms.aliyuncs.com", "http:// or https://"},
      {"https://", "no host"},
      {"https:///", "no host"},
      {"https://:8443", "no host"},
      {"https://host:", "port"},
      {"https://host:0", "port"},
      {"https://host:65536", "port"},
      {"https://host:80a", "port"},
      {"https://host:-1", "port"},
      {"https://host:1:2", "port"},
      {"https://host/path", "path"},
      {"https://host//", "path"},
      {"https://host?Action=x", "query"},
      {"https://host#frag", "fragment"},
      {"https://ho st", "characters"},
      {"https://host\r\nX-Injected: 1", "characters"},
      {"https://[::1", "IPv6"},
      {"https://[]:80", "IPv6"},
      {"https://[::1]x", "IPv6"},
      {"https://[::g]", "IPv6"},
  };
  for (const auto& [input, message] : cases) {
    EXPECT_THAT(parseEndpoint(input),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << input;
    RpcCall call = kmsCall();
    call.endpoint = input;
    EXPECT_THAT(buildSignedRequest(call, nullptr, SignatureScheme::kRpcHmacSha1,
                                   utc(2026, 1, 1, 0, 0, 0), "n"),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << input;
  }
}

// Verifies that user info is rejected without echoing the password.
TEST(ParseEndpointTest, RejectsUserInfoWithoutEchoingIt) {
  auto endpoint = parseEndpoint("https://user:hunter2@kms.aliyuncs.com");
  EXPECT_THAT(endpoint, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user info")));
  EXPECT_THAT(std::string(endpoint.status().message()), Not(HasSubstr("hunter2")));
}

// Verifies that invalid calls are INVALID_ARGUMENT and never mention the secret.
TEST(BuildSignedRequestTest, RejectsInvalidCalls) {
  const AccessKeyCredentials good = permanentKey("id", "TopSecret42");
  struct Case {
    const char* name;
    RpcCall call;
    AccessKeyCredentials credentials;
    std::string nonce;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({"method", kmsCall(), good, "n", "GET or POST"});
  cases.back().call.method = "PUT";
  cases.push_back({"lowercase method", kmsCall(), good, "n", "GET or POST"});
  cases.back().call.method = "post";
  cases.push_back({"action", kmsCall(), good, "n", "no action"});
  cases.back().call.action.clear();
  cases.push_back({"version", kmsCall(), good, "n", "no API version"});
  cases.back().call.version.clear();
  cases.push_back({"nonce", kmsCall(), good, "", "nonce"});
  cases.push_back({"reserved Signature", kmsCall(), good, "n", "parameter Signature"});
  cases.back().call.params["Signature"] = "forged";
  cases.push_back({"reserved Action", kmsCall(), good, "n", "parameter Action"});
  cases.back().call.params["Action"] = "DeleteSecret";
  cases.push_back({"reserved SecurityToken", kmsCall(), good, "n", "parameter SecurityToken"});
  cases.back().call.params["SecurityToken"] = "x";
  cases.push_back({"empty key id", kmsCall(), permanentKey("", "TopSecret42"), "n", "AccessKeyId"});
  cases.push_back({"empty secret", kmsCall(), permanentKey("id", ""), "n", "AccessKeySecret"});

  for (const Case& c : cases) {
    for (const SignatureScheme scheme :
         {SignatureScheme::kAcs3HmacSha256, SignatureScheme::kRpcHmacSha1}) {
      auto request =
          buildSignedRequest(c.call, &c.credentials, scheme, utc(2026, 1, 1, 0, 0, 0), c.nonce);
      EXPECT_THAT(request, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
          << c.name;
      EXPECT_THAT(std::string(request.status().message()), Not(HasSubstr("TopSecret42"))) << c.name;
    }
  }
}

}  // namespace
}  // namespace credsync::alibaba
