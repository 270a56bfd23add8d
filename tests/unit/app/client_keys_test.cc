#include "sidecar/app/client_keys.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fake_environment.h"
#include "tests/common/status_matchers.h"

namespace credsync::app {
namespace {

using ::credsync::testing::fakeEnvironment;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string alibabaTestdata(const std::string& name) {
  return std::string(CREDSYNC_ALIBABA_TESTDATA) + "/" + name;
}

// Verifies the startup opener: the official Java SDK fixture loads with its
// password file, and a wrong password is one line naming the instance and
// the file.
TEST(ClientKeysTest, OpenInstanceClientKey) {
  config::KmsInstanceConfig instance;
  instance.endpoint = "https://kst-1.cryptoservice.kms.aliyuncs.com";
  instance.client_key_file = alibabaTestdata("java_sdk_client_key.json");
  instance.password_file = alibabaTestdata("java_sdk_client_key_password.txt");
  const auto key = openInstanceClientKey(instance, fakeEnvironment({}));
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ((*key)->current()->keyId(), "key_for_unit_test");

  instance.password_file.clear();
  instance.password_env = "CK_PASSWORD";
  EXPECT_THAT(
      openInstanceClientKey(instance, fakeEnvironment({{"CK_PASSWORD", "4321"}})),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(StartsWith("KMS instance https://kst-1.cryptoservice.kms.aliyuncs.com: "
                                "client key "),
                     HasSubstr("java_sdk_client_key.json: wrong password"), Not(HasSubstr("\n")))));
  EXPECT_THAT(openInstanceClientKey(instance, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CK_PASSWORD is not set")));
}

config::KmsInstanceConfig instanceWithPasswordFile(const std::string& endpoint) {
  config::KmsInstanceConfig instance;
  instance.endpoint = endpoint;
  instance.client_key_file = alibabaTestdata("java_sdk_client_key.json");
  instance.password_file = alibabaTestdata("java_sdk_client_key_password.txt");
  return instance;
}

// Verifies every instance's key is opened, in the order of the instances,
// and that one key that does not open fails the whole with its instance named.
TEST(ClientKeysTest, OpensEveryInstanceInOrder) {
  config::KmsConfig kms;
  EXPECT_THAT(openClientKeys(kms, fakeEnvironment()), IsOk());
  kms.instances = {instanceWithPasswordFile("https://kst-1.cryptoservice.kms.aliyuncs.com"),
                   instanceWithPasswordFile("https://kst-2.cryptoservice.kms.aliyuncs.com")};
  absl::StatusOr<ClientKeys> keys = openClientKeys(kms, fakeEnvironment());
  ASSERT_THAT(keys, IsOk());
  ASSERT_THAT(*keys, SizeIs(2));
  EXPECT_EQ((*keys)[1]->reloads().key_id, "key_for_unit_test");

  kms.instances[1].password_file = alibabaTestdata("missing_password.txt");
  EXPECT_THAT(openClientKeys(kms, fakeEnvironment()),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(StartsWith("KMS instance https://kst-2."),
                             HasSubstr("missing_password.txt"), Not(HasSubstr("\n")))));
}

}  // namespace
}  // namespace credsync::app
