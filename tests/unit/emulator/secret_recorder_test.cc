#include "tests/emulator/secret_recorder.h"

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/emulator/world.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using Recorded = std::vector<std::pair<std::string, std::string>>;

class MemoryRecorder : public SecretRecorder {
 public:
  void record(absl::string_view kind, absl::string_view secret) override {
    absl::MutexLock lock(&mutex_);
    recorded_.emplace_back(std::string(kind), std::string(secret));
  }
  Recorded recorded() const {
    absl::MutexLock lock(&mutex_);
    return recorded_;
  }

 private:
  mutable absl::Mutex mutex_;
  Recorded recorded_ ABSL_GUARDED_BY(mutex_);
};

Recorded readRecordFile(const std::string& path) {
  Recorded out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json json = nlohmann::json::parse(line);
    out.emplace_back(json.at("kind").get<std::string>(), json.at("secret").get<std::string>());
  }
  return out;
}

// Verifies the file recorder appends one JSON line per secret to a 0600
// file, skips empty values, keeps a newline inside one line, and appends to
// what an earlier emulator wrote.
TEST(SecretRecorderTest, FileRecorderAppendsOneJsonLinePerSecret) {
  testing::TempDir dir("secret_recorder");
  const std::string path = dir.file("secrets.txt");
  {
    auto recorder = makeFileSecretRecorder(path);
    ASSERT_THAT(recorder, IsOk());
    (*recorder)->record("access_key_secret", "abc123");
    (*recorder)->record("oidc_token", "");
    (*recorder)->record("sts_security_token", "two\nlines");
  }
  {
    auto recorder = makeFileSecretRecorder(path);
    ASSERT_THAT(recorder, IsOk());
    (*recorder)->record("oidc_token", "h.p.s");
  }
  EXPECT_THAT(readRecordFile(path),
              ElementsAre(Pair("access_key_secret", "abc123"),
                          Pair("sts_security_token", "two\nlines"), Pair("oidc_token", "h.p.s")));
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_FALSE(makeFileSecretRecorder(dir.file("no/such/dir/secrets.txt")).ok());
}

// Verifies the World gives every secret it creates to the recorder: admin
// and generated keys, each secret version's key (created and rotated), and
// an STS session's secret and token; and nothing without a recorder.
TEST(SecretRecorderTest, WorldRecordsEverySecretItIssues) {
  testing::SimulatedTimeSource time;
  World world(time, "1234567890123456", "cn-hangzhou");
  world.addAccessKey("", "", {"*"});  // before a recorder: not recorded
  MemoryRecorder recorder;
  world.setSecretRecorder(&recorder);

  const AccessKey given = world.addAccessKey("LTAI5tGIVEN", "given-secret", {"*"});
  const AccessKey generated = world.addAccessKey("", "", {});
  auto created = world.createSecret("acs/ram/user/app", "app", 3600, std::nullopt);
  ASSERT_THAT(created, IsOk());
  auto rotated = world.rotateSecret("acs/ram/user/app", false);
  ASSERT_THAT(rotated, IsOk());
  Role role;
  role.arn = "acs:ram::1234567890123456:role/app";
  world.addRole(role);
  const Session session = world.issueSession(role, absl::Hours(1));

  EXPECT_THAT(
      recorder.recorded(),
      ElementsAre(Pair("access_key_secret", "given-secret"),
                  Pair("access_key_secret", generated.secret.reveal()),
                  Pair("secret_version_access_key_secret", created->access_key_secret.reveal()),
                  Pair("secret_version_access_key_secret", rotated->access_key_secret.reveal()),
                  Pair("sts_access_key_secret", session.secret.reveal()),
                  Pair("sts_security_token", session.security_token.reveal())));

  world.setSecretRecorder(nullptr);
  world.addAccessKey("", "", {});
  EXPECT_EQ(recorder.recorded().size(), 6u);
}

class FixedIssuer : public OidcIssuer {
 public:
  const std::string& issuerUrl() const override { return url_; }
  std::string mint(const MintRequest& request, absl::Time) const override {
    return "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI" + request.subject + "In0.c2lnbmF0dXJl";
  }
  std::variant<OidcClaims, TokenProblem> verify(const std::string& token,
                                                absl::Time) const override {
    OidcClaims claims;
    claims.subject = token;
    return claims;
  }

 private:
  std::string url_ = "https://issuer.example";
};

// Verifies the recording issuer records each minted JWT and its signature
// part, and passes minting and verification through unchanged.
TEST(SecretRecorderTest, RecordingIssuerRecordsTokenAndSignature) {
  MemoryRecorder recorder;
  auto issuer = makeRecordingOidcIssuer(std::make_unique<FixedIssuer>(), recorder);
  EXPECT_EQ(issuer->issuerUrl(), "https://issuer.example");
  EXPECT_THAT(recorder.recorded(), IsEmpty());
  MintRequest request;
  request.subject = "sa";
  const std::string token = issuer->mint(request, absl::UnixEpoch());
  EXPECT_EQ(token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIsaIn0.c2lnbmF0dXJl");
  EXPECT_THAT(recorder.recorded(),
              UnorderedElementsAre(Pair("oidc_token", token),
                                   Pair("oidc_token_signature", "c2lnbmF0dXJl")));
  const auto verified = issuer->verify("tok", absl::UnixEpoch());
  ASSERT_TRUE(std::holds_alternative<OidcClaims>(verified));
  EXPECT_EQ(std::get<OidcClaims>(verified).subject, "tok");
  EXPECT_EQ(recorder.recorded().size(), 2u);
}

}  // namespace
}  // namespace credsync::emulator
