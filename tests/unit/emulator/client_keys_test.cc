#include "tests/emulator/client_keys.h"

#include <sys/stat.h>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/emulator/client_key_crypto.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::Contains;
using ::testing::Pair;

class ListRecorder : public SecretRecorder {
 public:
  void record(absl::string_view kind, absl::string_view secret) override {
    records.emplace_back(std::string(kind), std::string(secret));
  }
  std::vector<std::pair<std::string, std::string>> records;
};

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class ClientKeyRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { world_.setSecretRecorder(&recorder_); }
  void TearDown() override { world_.setSecretRecorder(nullptr); }

  credsync::testing::TempDir dir_{"client_keys"};
  credsync::testing::SimulatedTimeSource time_;
  World world_{time_, "1234567890123456", "cn-hangzhou"};
  ListRecorder recorder_;
  ClientKeyRegistry registry_{world_, dir_.path()};
};

// Verifies a created key gets a KAAP id, the console's two files (0600)
// whose content opens as the key, and that its secrets are recorded.
TEST_F(ClientKeyRegistryTest, CreateWritesConsoleFilesAndRecords) {
  ClientKeySpec spec;
  spec.secrets = {"acs/ram/user/app"};
  auto created = registry_.create(spec);
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->key.key_id.rfind("KAAP.", 0), 0u);
  EXPECT_EQ(created->key_file, dir_.path() + "/clientKey_" + created->key.key_id + ".json");
  const nlohmann::json file = nlohmann::json::parse(readAll(created->key_file));
  EXPECT_EQ(file.size(), 2u);
  EXPECT_EQ(file["KeyId"], created->key.key_id);
  EXPECT_EQ(readAll(created->password_file), created->password.reveal());
  struct stat info {};
  ASSERT_EQ(stat(created->key_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_THAT(openClientKey(file["PrivateKeyData"].get<std::string>(), created->password.reveal()),
              IsOk());

  EXPECT_THAT(recorder_.records, Contains(Pair("client_key_password", created->password.reveal())));
  EXPECT_THAT(recorder_.records,
              Contains(Pair("client_key_private_key_data", created->private_key_data.reveal())));
  int private_keys = 0;
  for (const auto& [kind, secret] : recorder_.records) {
    if (kind == "client_key_private_key") ++private_keys;
  }
  EXPECT_EQ(private_keys, 1);  // the PEM's body on one line
  for (const auto& [kind, secret] : recorder_.records) {
    EXPECT_EQ(secret.find("-----"), std::string::npos) << kind;
  }
}

// Verifies ids are unique and well-formed, and imported data must open.
TEST_F(ClientKeyRegistryTest, RefusesDuplicateBadIdAndBadImport) {
  ClientKeySpec spec;
  spec.key_id = "KAAP.fixed";
  spec.password = "pw";
  ASSERT_THAT(registry_.create(spec), IsOk());
  EXPECT_THAT(registry_.create(spec), StatusIs(absl::StatusCode::kAlreadyExists));
  spec.key_id = "KAAP/../x";
  EXPECT_THAT(registry_.create(spec), StatusIs(absl::StatusCode::kInvalidArgument));
  spec.key_id = "KAAP.import";
  spec.private_key_data = "AAAA";
  EXPECT_THAT(registry_.create(spec), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(registry_.find("KAAP.import").has_value());
}

// Verifies disable and enable change the state the gateway reads.
TEST_F(ClientKeyRegistryTest, DisableAndEnable) {
  ClientKeySpec spec;
  spec.key_id = "KAAP.state";
  ASSERT_THAT(registry_.create(spec), IsOk());
  EXPECT_TRUE(registry_.setState("KAAP.state", KeyState::kDisabled));
  EXPECT_EQ(registry_.find("KAAP.state")->state, KeyState::kDisabled);
  EXPECT_TRUE(registry_.setState("KAAP.state", KeyState::kActive));
  EXPECT_EQ(registry_.find("KAAP.state")->state, KeyState::kActive);
  EXPECT_FALSE(registry_.setState("KAAP.none", KeyState::kActive));
}

}  // namespace
}  // namespace credsync::emulator
