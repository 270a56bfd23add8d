// The emulator's gateway checks on Alibaba's published signature examples,
// sent as the wire would carry them, at the examples' own time. Unlike
// authenticator_test.cc (which cross-checks against the sidecar's signer),
// this links no sidecar signing code.
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/signature_vectors.h"
#include "tests/common/simulated_time_source.h"
#include "tests/emulator/authenticator.h"

namespace credsync::emulator {
namespace {

namespace vectors = ::credsync::testing::signature_vectors;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

absl::Time at(const char* rfc3339) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) << error;
  return time;
}

std::string outcomeCode(const std::variant<Principal, ApiError>& outcome) {
  if (const auto* error = std::get_if<ApiError>(&outcome)) return error->code;
  return "OK:" + std::get<Principal>(outcome).access_key_id;
}

// The RPC doc example (GET, everything in the query) at 2016-02-23T12:46:24Z.
class RpcDocVectorTest : public ::testing::Test {
 protected:
  static constexpr char kTarget[] =
      "/?AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
      "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
      "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
      "&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D";

  RpcDocVectorTest()
      : time_(at("2016-02-23T12:46:24Z")), world_(time_, "1234567890123456", "cn-hangzhou") {
    world_.addAccessKey("testid", vectors::kRpcDocSecret, {"*"});
  }

  std::string authenticateTarget(const std::string& target) {
    auto request = parseApiRequest("GET", target, {}, "");
    EXPECT_TRUE(request.ok()) << request.status();
    return outcomeCode(authenticate(*request, world_));
  }

  testing::SimulatedTimeSource time_;
  World world_;
};

// Verifies the published request is accepted as the key it names.
TEST_F(RpcDocVectorTest, AcceptsPublishedRequest) {
  EXPECT_EQ(authenticateTarget(kTarget), "OK:testid");
}

// Verifies a changed parameter gets SignatureDoesNotMatch, with the
// server's string to sign in the message.
TEST_F(RpcDocVectorTest, RefusesTamperedQuery) {
  std::string target = kTarget;
  target.replace(target.find("Format=XML"), 10, "Format=JSON");
  auto request = parseApiRequest("GET", target, {}, "");
  ASSERT_TRUE(request.ok());
  auto outcome = authenticate(*request, world_);
  ASSERT_EQ(outcomeCode(outcome), "SignatureDoesNotMatch");
  EXPECT_NE(std::get<ApiError>(outcome).message.find("server string to sign is:GET&%2F&"),
            std::string::npos);
}

// Verifies the same request fails when the key's secret is another.
TEST_F(RpcDocVectorTest, RefusesWrongSecret) {
  World other(time_, "1234567890123456", "cn-hangzhou");
  other.addAccessKey("testid", "othersecret", {"*"});
  auto request = parseApiRequest("GET", kTarget, {}, "");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(outcomeCode(authenticate(*request, other)), "SignatureDoesNotMatch");
}

// Verifies a replay is refused, and so is the request once it is old.
TEST_F(RpcDocVectorTest, RefusesReplayAndOldTimestamp) {
  EXPECT_EQ(authenticateTarget(kTarget), "OK:testid");
  EXPECT_EQ(authenticateTarget(kTarget), "SignatureNonceUsed");
  time_.advance(absl::Minutes(16));
  EXPECT_EQ(authenticateTarget(kTarget), "InvalidTimeStamp.Expired");
}

// Verifies a request without its Signature is refused before any lookup.
TEST_F(RpcDocVectorTest, RefusesMissingSignature) {
  std::string target = kTarget;
  target.erase(target.find("&Signature="));
  EXPECT_EQ(authenticateTarget(target), "MissingParameter");
}

// The V3 doc example (POST, empty body) at 2023-10-26T10:22:32Z.
class Acs3DocVectorTest : public ::testing::Test {
 protected:
  static constexpr char kTarget[] =
      "/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai";

  Acs3DocVectorTest()
      : time_(at("2023-10-26T10:22:32Z")), world_(time_, "1234567890123456", "cn-hangzhou") {
    world_.addAccessKey(vectors::kAcs3DocAccessKeyId, vectors::kAcs3DocSecret, {"*"});
  }

  static HeaderList publishedHeaders() {
    HeaderList headers = vectors::acs3DocHeaders();
    headers.emplace_back("Authorization", vectors::kAcs3DocAuthorization);
    return headers;
  }

  std::string authenticateWith(const HeaderList& headers, const std::string& body = "") {
    auto request = parseApiRequest("POST", kTarget, headers, body);
    EXPECT_TRUE(request.ok()) << request.status();
    return outcomeCode(authenticate(*request, world_));
  }

  static HeaderList with(HeaderList headers, const std::string& name, const std::string& value) {
    for (auto& header : headers) {
      if (header.first == name) header.second = value;
    }
    return headers;
  }

  testing::SimulatedTimeSource time_;
  World world_;
};

// Verifies the published request is accepted as the key it names.
TEST_F(Acs3DocVectorTest, AcceptsPublishedRequest) {
  EXPECT_EQ(authenticateWith(publishedHeaders()), "OK:YourAccessKeyId");
}

// Verifies a changed signed header or query value breaks the signature.
TEST_F(Acs3DocVectorTest, RefusesTamperedRequest) {
  EXPECT_EQ(authenticateWith(with(publishedHeaders(), "x-acs-action", "StopInstance")),
            "SignatureDoesNotMatch");
  auto request = parseApiRequest("POST", std::string(kTarget) + "&InstanceType=ecs.g7.large",
                                 publishedHeaders(), "");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(outcomeCode(authenticate(*request, world_)), "SignatureDoesNotMatch");
}

// Verifies a body that does not match x-acs-content-sha256 is refused.
TEST_F(Acs3DocVectorTest, RefusesBodyOtherThanHashed) {
  EXPECT_EQ(authenticateWith(publishedHeaders(), "injected=1"), "InvalidParameter.ContentSha256");
}

// Verifies a required header that is missing, or sent but not signed, is
// IncompleteSignature.
TEST_F(Acs3DocVectorTest, RefusesMissingOrUnsignedRequiredHeader) {
  HeaderList without_date;
  for (const auto& header : publishedHeaders()) {
    if (header.first != "x-acs-date") without_date.push_back(header);
  }
  EXPECT_EQ(authenticateWith(without_date), "IncompleteSignature");
  EXPECT_EQ(authenticateWith(with(publishedHeaders(), "Authorization",
                                  "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
                                  "SignedHeaders=host;x-acs-action,Signature=00")),
            "IncompleteSignature");
}

// Verifies another algorithm name is refused as unsupported.
TEST_F(Acs3DocVectorTest, RefusesOtherAlgorithm) {
  std::string authorization = vectors::kAcs3DocAuthorization;
  authorization.replace(0, 16, "ACS3-HMAC-SM3");
  EXPECT_EQ(authenticateWith(with(publishedHeaders(), "Authorization", authorization)),
            "InvalidParameter.SignatureMethod");
}

// Verifies a replay is refused, and so is the request once it is old.
TEST_F(Acs3DocVectorTest, RefusesReplayAndOldTimestamp) {
  EXPECT_EQ(authenticateWith(publishedHeaders()), "OK:YourAccessKeyId");
  EXPECT_EQ(authenticateWith(publishedHeaders()), "SignatureNonceUsed");
  time_.advance(absl::Minutes(16));
  EXPECT_EQ(authenticateWith(publishedHeaders()), "InvalidTimeStamp.Expired");
}

}  // namespace
}  // namespace credsync::emulator
