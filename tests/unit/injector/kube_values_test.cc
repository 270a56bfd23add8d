#include "sidecar/injector/kube_values.h"

#include "gtest/gtest.h"

namespace credsync::injector {
namespace {

// Verifies the quantity forms the API server accepts pass and others fail.
TEST(KubeValuesTest, Quantities) {
  for (const char* good : {"10m", "0.5", "1", "128Mi", "1Gi", "2e3", "1E-2", "0", ".5", "100k"}) {
    EXPECT_TRUE(isQuantity(good)) << good;
  }
  for (const char* bad : {"", "-1Gi", "+1", "ten", "1 Gi", "1mi", "1GB", "e3", "1e", "Mi", "1.2.3",
                          "123456789012345678901234567890123"}) {
    EXPECT_FALSE(isQuantity(bad)) << bad;
  }
}

// Verifies ConfigMap names follow RFC 1123 subdomains.
TEST(KubeValuesTest, DnsSubdomains) {
  EXPECT_TRUE(isDnsSubdomain("backup-credsync"));
  EXPECT_TRUE(isDnsSubdomain("a.b-c.d"));
  EXPECT_FALSE(isDnsSubdomain("Bad_Name"));
  EXPECT_FALSE(isDnsSubdomain("-leading"));
  EXPECT_FALSE(isDnsSubdomain("trailing."));
  EXPECT_FALSE(isDnsSubdomain(""));
  EXPECT_FALSE(isDnsSubdomain(std::string(254, 'a')));
}

// Verifies region ids and image references.
TEST(KubeValuesTest, RegionsAndImages) {
  EXPECT_TRUE(isRegionId("cn-hangzhou"));
  EXPECT_FALSE(isRegionId("CN_Hangzhou"));
  EXPECT_FALSE(isRegionId(""));
  EXPECT_TRUE(isImageReference("registry.example.com/credsync@sha256:abc"));
  EXPECT_FALSE(isImageReference("credsync 1.0"));
  EXPECT_FALSE(isImageReference(""));
}

}  // namespace
}  // namespace credsync::injector
