#include "sidecar/alibaba/client_key_source.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::readFile;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kFixtureKeyId[] = "key_for_unit_test";

std::string readTestdata(const std::string& name) {
  return readFile(absl::StrCat(CREDSYNC_ALIBABA_TESTDATA, "/", name));
}

// The official fixture's client-key JSON with another KeyId: the same
// PKCS#12 (password 1234), so it loads, but is told apart by its id.
std::string clientKeyJson(const std::string& key_id) {
  return absl::StrReplaceAll(
      readTestdata("java_sdk_client_key.json"),
      {{absl::StrCat("\"", kFixtureKeyId, "\""), absl::StrCat("\"", key_id, "\"")}});
}

// Writes `content` to `path` through a rename, as editors and kubectl do:
// a new inode at the same path.
void replaceFile(const std::string& path, const std::string& content) {
  const std::string staging = path + ".new";
  std::ofstream(staging, std::ios::binary | std::ios::trunc) << content;
  std::filesystem::rename(staging, path);
}

std::optional<std::string> noEnvironment(const std::string&) { return std::nullopt; }

class ReloadingClientKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replaceFile(key_file_, clientKeyJson(kFixtureKeyId));
    replaceFile(password_file_, "1234\n");
  }

  std::unique_ptr<ReloadingClientKey> open() {
    ClientKeyPasswordSource password;
    password.file = password_file_;
    auto source = ReloadingClientKey::open(key_file_, password, noEnvironment, "https://kst-1");
    EXPECT_THAT(source, IsOk());
    return source.ok() ? *std::move(source) : nullptr;
  }

  TempDir dir_{"client_key_source_test"};
  const std::string key_file_ = dir_.file("clientKey.json");
  const std::string password_file_ = dir_.file("password");
};

// Verifies the key loads at open and is the same object for as long as the
// files stay as they are.
TEST_F(ReloadingClientKeyTest, UnchangedFilesKeepTheKey) {
  std::unique_ptr<ReloadingClientKey> source = open();
  ASSERT_NE(source, nullptr);
  const std::shared_ptr<const ClientKey> first = source->current();
  EXPECT_EQ(first->keyId(), kFixtureKeyId);
  EXPECT_EQ(source->current(), first);
  EXPECT_EQ(source->current(), first);
  const ClientKeyReloads reloads = source->reloads();
  EXPECT_EQ(reloads.key_id, kFixtureKeyId);
  EXPECT_EQ(reloads.succeeded, 0u);
  EXPECT_EQ(reloads.failed, 0u);
}

// Verifies a replaced client-key file is used from the next call on, and a
// key handed out before stays usable.
TEST_F(ReloadingClientKeyTest, ReplacedFileIsLoaded) {
  std::unique_ptr<ReloadingClientKey> source = open();
  ASSERT_NE(source, nullptr);
  const std::shared_ptr<const ClientKey> old_key = source->current();
  replaceFile(key_file_, clientKeyJson("KAAP.second"));
  EXPECT_EQ(source->current()->keyId(), "KAAP.second");
  EXPECT_THAT(old_key->sign("string to sign"), IsOk());
  EXPECT_EQ(source->reloads().succeeded, 1u);
  EXPECT_EQ(source->reloads().key_id, "KAAP.second");
}

// Verifies the update a Kubernetes Secret volume makes: every file is a
// symlink through "..data" to a timestamped directory, and the kubelet
// switches "..data" to a new directory with one rename.
TEST_F(ReloadingClientKeyTest, KubeletSymlinkSwitchIsLoaded) {
  namespace fs = std::filesystem;
  const fs::path volume = dir_.file("volume");
  auto writeGeneration = [&](const std::string& name, const std::string& key_id,
                             const std::string& password) {
    fs::create_directories(volume / name);
    std::ofstream(volume / name / "clientKey.json") << clientKeyJson(key_id);
    std::ofstream(volume / name / "password") << password;
    fs::create_directory_symlink(name, volume / "..data_tmp");
    fs::rename(volume / "..data_tmp", volume / "..data");
  };
  writeGeneration("..2026_11_24_10_00_00.1", "KAAP.first", "1234");
  fs::create_symlink("..data/clientKey.json", volume / "clientKey.json");
  fs::create_symlink("..data/password", volume / "password");

  ClientKeyPasswordSource password;
  password.file = (volume / "password").string();
  auto source = ReloadingClientKey::open((volume / "clientKey.json").string(), password,
                                         noEnvironment, "https://kst-1");
  ASSERT_THAT(source, IsOk());
  EXPECT_EQ((*source)->current()->keyId(), "KAAP.first");

  writeGeneration("..2026_11_24_11_00_00.2", "KAAP.second", "1234");
  fs::remove_all(volume / "..2026_11_24_10_00_00.1");
  EXPECT_EQ((*source)->current()->keyId(), "KAAP.second");
  EXPECT_EQ((*source)->reloads().succeeded, 1u);
}

// Verifies a change that cannot be loaded keeps the key in use, is counted
// and tried once per change, and that the next good change is taken.
TEST_F(ReloadingClientKeyTest, BadChangeKeepsTheKeyUntilTheNextChange) {
  std::unique_ptr<ReloadingClientKey> source = open();
  ASSERT_NE(source, nullptr);

  replaceFile(key_file_, R"({"KeyId": "KAAP.half-writ)");
  EXPECT_EQ(source->current()->keyId(), kFixtureKeyId);
  EXPECT_EQ(source->current()->keyId(), kFixtureKeyId);
  EXPECT_EQ(source->reloads().failed, 1u);

  replaceFile(key_file_, clientKeyJson("KAAP.second"));
  replaceFile(password_file_, "4321");  // a password for some other key
  EXPECT_EQ(source->current()->keyId(), kFixtureKeyId);
  EXPECT_EQ(source->reloads().failed, 2u);

  std::filesystem::remove(key_file_);
  EXPECT_EQ(source->current()->keyId(), kFixtureKeyId);
  EXPECT_EQ(source->reloads().failed, 3u);

  replaceFile(key_file_, clientKeyJson("KAAP.second"));
  replaceFile(password_file_, "1234");
  EXPECT_EQ(source->current()->keyId(), "KAAP.second");
  const ClientKeyReloads reloads = source->reloads();
  EXPECT_EQ(reloads.succeeded, 1u);
  EXPECT_EQ(reloads.failed, 3u);
}

// Verifies a password from the environment is read once, at open: a
// replaced key file loads with it although the variable is gone by then.
TEST_F(ReloadingClientKeyTest, EnvironmentPasswordIsKeptFromOpen) {
  bool variable_set = true;
  auto environment = [&](const std::string& name) -> std::optional<std::string> {
    if (variable_set && name == "CK_PASSWORD") return "1234";
    return std::nullopt;
  };
  ClientKeyPasswordSource password;
  password.env_variable = "CK_PASSWORD";
  auto source = ReloadingClientKey::open(key_file_, password, environment, "https://kst-1");
  ASSERT_THAT(source, IsOk());
  variable_set = false;
  replaceFile(key_file_, clientKeyJson("KAAP.second"));
  EXPECT_EQ((*source)->current()->keyId(), "KAAP.second");
}

// Verifies open fails with loadClientKey's errors.
TEST_F(ReloadingClientKeyTest, OpenErrors) {
  ClientKeyPasswordSource password;
  password.file = password_file_;
  replaceFile(password_file_, "4321");
  EXPECT_THAT(ReloadingClientKey::open(key_file_, password, noEnvironment, "https://kst-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wrong password")));
  EXPECT_THAT(
      ReloadingClientKey::open(dir_.file("missing.json"), password, noEnvironment, "https://kst-1"),
      StatusIs(absl::StatusCode::kNotFound));
  password.file.clear();
  password.env_variable = "CK_PASSWORD";
  EXPECT_THAT(ReloadingClientKey::open(key_file_, password, noEnvironment, "https://kst-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CK_PASSWORD")));
}

// Verifies signers on many threads always get a whole key while the file is
// replaced under them (run under TSan with the concurrency label).
TEST_F(ReloadingClientKeyTest, ConcurrentSignersDuringReplacement) {
  constexpr int kSigners = 4;
  constexpr int kSignaturesEach = 25;
  std::unique_ptr<ReloadingClientKey> source = open();
  ASSERT_NE(source, nullptr);
  std::atomic<int> signatures{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> signers;
  for (int i = 0; i < kSigners; ++i) {
    signers.emplace_back([&] {
      for (int n = 0; n < kSignaturesEach; ++n) {
        const std::shared_ptr<const ClientKey> key = source->current();
        if (key->sign("string to sign").ok()) signatures.fetch_add(1);
      }
      finished.fetch_add(1);
    });
  }
  for (int i = 0; finished.load() < kSigners; ++i) {
    replaceFile(key_file_, clientKeyJson(absl::StrCat("KAAP.", i)));
  }
  for (std::thread& signer : signers) signer.join();
  EXPECT_EQ(signatures.load(), kSigners * kSignaturesEach);
  replaceFile(key_file_, clientKeyJson("KAAP.last"));
  EXPECT_EQ(source->current()->keyId(), "KAAP.last");
  EXPECT_EQ(source->reloads().failed, 0u);
}

}  // namespace
}  // namespace credsync::alibaba
