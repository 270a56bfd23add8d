#include "sidecar/injector/certificate_store.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/emulator/pki.h"
#include "tests/unit/injector/secret_volume.h"

namespace credsync::injector {
namespace {

using credsync::testing::IsOk;
using credsync::testing::readFile;
using credsync::testing::SecretVolume;
using credsync::testing::StatusIs;
using credsync::testing::TempDir;
using credsync::testing::writeFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Two unrelated certificate/key pairs (each from its own test CA), as PEM.
class CertificateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<emulator::Pki> first =
        emulator::loadOrCreatePki(pki_a_.path(), {"localhost"}, {"127.0.0.1"});
    absl::StatusOr<emulator::Pki> second =
        emulator::loadOrCreatePki(pki_b_.path(), {"localhost"}, {"127.0.0.1"});
    ASSERT_THAT(first, IsOk());
    ASSERT_THAT(second, IsOk());
    cert_a_ = readFile(first->server_cert_path);
    key_a_ = readFile(first->server_key_path);
    cert_b_ = readFile(second->server_cert_path);
    key_b_ = readFile(second->server_key_path);
    ASSERT_NE(cert_a_, cert_b_);
  }

  std::unique_ptr<CertificateStore> load(const SecretVolume& volume) {
    absl::StatusOr<std::unique_ptr<CertificateStore>> store =
        CertificateStore::load(volume.certPath(), volume.keyPath());
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  // True when the store serves the certificate in `cert_pem`.
  static bool serves(const CertificateStore& store, const std::string& cert_pem) {
    BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    const bool same =
        certificate != nullptr && X509_cmp(certificate, store.current()->leaf.get()) == 0;
    X509_free(certificate);
    return same;
  }

  TempDir pki_a_{"pki-a"};
  TempDir pki_b_{"pki-b"};
  TempDir volume_dir_{"volume"};
  std::string cert_a_, key_a_, cert_b_, key_b_;
};

// Verifies a matching pair loads, with the leaf's notAfter and generation 1.
TEST_F(CertificateStoreTest, LoadsPair) {
  SecretVolume volume(volume_dir_.path());
  volume.publish(cert_a_, key_a_);
  const std::unique_ptr<CertificateStore> store = load(volume);
  ASSERT_NE(store, nullptr);
  const std::shared_ptr<const CertificatePair> pair = store->current();
  ASSERT_NE(pair, nullptr);
  EXPECT_TRUE(serves(*store, cert_a_));
  EXPECT_EQ(pair->generation, 1u);
  EXPECT_TRUE(pair->intermediates.empty());
  EXPECT_EQ(
      ASN1_TIME_cmp_time_t(X509_get0_notAfter(pair->leaf.get()), absl::ToTimeT(pair->not_after)),
      0);
}

// Verifies the certificates after the leaf are kept as the chain.
TEST_F(CertificateStoreTest, LoadsChain) {
  absl::StatusOr<emulator::KmsInstancePki> instance_pki =
      emulator::loadOrCreateKmsInstancePki(pki_a_.path(), "cn-hangzhou", {"kst-one"});
  ASSERT_THAT(instance_pki, IsOk());
  const emulator::KmsInstancePki::ServerFiles& files = instance_pki->servers.at("kst-one");
  absl::StatusOr<std::unique_ptr<CertificateStore>> store =
      CertificateStore::load(files.cert_chain_path, files.key_path);
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->current()->intermediates.size(), 1u);
}

// Verifies a key of another certificate is refused at load, naming both files.
TEST_F(CertificateStoreTest, RefusesMismatchedKey) {
  writeFile(volume_dir_.file("tls.crt"), cert_a_);
  writeFile(volume_dir_.file("tls.key"), key_b_);
  absl::StatusOr<std::unique_ptr<CertificateStore>> store =
      CertificateStore::load(volume_dir_.file("tls.crt"), volume_dir_.file("tls.key"));
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kInvalidArgument,
                              AllOf(HasSubstr("does not match"), HasSubstr("tls.crt"),
                                    HasSubstr("tls.key"))));
}

// Verifies unusable files are refused at load with one line naming the file.
TEST_F(CertificateStoreTest, RefusesUnusableFiles) {
  writeFile(volume_dir_.file("garbage.crt"), "not a certificate\n");
  writeFile(volume_dir_.file("tls.key"), key_a_);
  writeFile(volume_dir_.file("tls.crt"), cert_a_);
  writeFile(volume_dir_.file("garbage.key"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");

  auto garbage_cert =
      CertificateStore::load(volume_dir_.file("garbage.crt"), volume_dir_.file("tls.key"));
  EXPECT_THAT(garbage_cert, StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("garbage.crt: no PEM certificate")));
  auto garbage_key =
      CertificateStore::load(volume_dir_.file("tls.crt"), volume_dir_.file("garbage.key"));
  EXPECT_THAT(garbage_key, StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("garbage.key: no unencrypted PEM private key")));
  auto missing =
      CertificateStore::load(volume_dir_.file("absent.crt"), volume_dir_.file("tls.key"));
  EXPECT_THAT(missing, Not(IsOk()));
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.crt"));
  for (const absl::Status& status :
       {garbage_cert.status(), garbage_key.status(), missing.status()}) {
    EXPECT_FALSE(absl::StrContains(status.message(), "\n")) << status;
  }
}

// Verifies unchanged files, and files rewritten with the same bytes, are
// not a reload.
TEST_F(CertificateStoreTest, UnchangedIsNoReload) {
  SecretVolume volume(volume_dir_.path());
  volume.publish(cert_a_, key_a_);
  const std::unique_ptr<CertificateStore> store = load(volume);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kUnchanged);
  volume.publish(cert_a_, key_a_);  // new inodes, same content
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kUnchanged);
  EXPECT_EQ(store->current()->generation, 1u);
}

// Verifies a kubelet-style `..data` symlink swap is seen and the new pair
// replaces the old one, while a holder of the old pair keeps it intact.
TEST_F(CertificateStoreTest, ReloadsOnSymlinkSwap) {
  SecretVolume volume(volume_dir_.path());
  volume.publish(cert_a_, key_a_);
  const std::unique_ptr<CertificateStore> store = load(volume);
  ASSERT_NE(store, nullptr);
  const std::shared_ptr<const CertificatePair> old_pair = store->current();

  volume.publish(cert_b_, key_b_);
  const CertificateReloadResult result = store->checkForChange();
  EXPECT_EQ(result.outcome, CertificateReload::kLoaded);
  EXPECT_THAT(result.error, IsOk());
  EXPECT_TRUE(serves(*store, cert_b_));
  EXPECT_EQ(store->current()->generation, 2u);
  EXPECT_EQ(X509_check_private_key(old_pair->leaf.get(), old_pair->key.get()), 1);
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kUnchanged);
}

// Verifies files replaced in place (cert-manager writing them directly) are
// seen too.
TEST_F(CertificateStoreTest, ReloadsInPlaceRewrite) {
  writeFile(volume_dir_.file("tls.crt"), cert_a_);
  writeFile(volume_dir_.file("tls.key"), key_a_);
  absl::StatusOr<std::unique_ptr<CertificateStore>> store =
      CertificateStore::load(volume_dir_.file("tls.crt"), volume_dir_.file("tls.key"));
  ASSERT_THAT(store, IsOk());
  writeFile(volume_dir_.file("tls.crt"), cert_b_);
  writeFile(volume_dir_.file("tls.key"), key_b_);
  EXPECT_EQ((*store)->checkForChange().outcome, CertificateReload::kLoaded);
  EXPECT_TRUE(serves(**store, cert_b_));
}

// Verifies a mismatched new pair is rejected once with one line, the old
// pair stays, and a later valid pair is loaded.
TEST_F(CertificateStoreTest, RejectedPairKeepsOld) {
  SecretVolume volume(volume_dir_.path());
  volume.publish(cert_a_, key_a_);
  const std::unique_ptr<CertificateStore> store = load(volume);
  ASSERT_NE(store, nullptr);

  volume.publish(cert_b_, key_a_);
  CertificateReloadResult result = store->checkForChange();
  EXPECT_EQ(result.outcome, CertificateReload::kRejected);
  EXPECT_THAT(result.error,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_FALSE(absl::StrContains(result.error.message(), "\n"));
  EXPECT_TRUE(serves(*store, cert_a_));
  // Reported once, not at every check while the files stay as they are.
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kUnchanged);

  volume.publish("garbage", key_b_);
  result = store->checkForChange();
  EXPECT_EQ(result.outcome, CertificateReload::kRejected);
  EXPECT_THAT(result.error.message(), HasSubstr("no PEM certificate"));
  EXPECT_TRUE(serves(*store, cert_a_));

  volume.publish(cert_b_, key_b_);
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kLoaded);
  EXPECT_TRUE(serves(*store, cert_b_));
  EXPECT_EQ(store->current()->generation, 2u);
}

// Verifies vanished files are reported once and the pair in use stays.
TEST_F(CertificateStoreTest, MissingFilesKeepOld) {
  SecretVolume volume(volume_dir_.path());
  volume.publish(cert_a_, key_a_);
  const std::unique_ptr<CertificateStore> store = load(volume);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(unlink(volume.certPath().c_str()), 0);
  const CertificateReloadResult result = store->checkForChange();
  EXPECT_EQ(result.outcome, CertificateReload::kRejected);
  EXPECT_THAT(result.error.message(), HasSubstr("tls.crt"));
  EXPECT_EQ(store->checkForChange().outcome, CertificateReload::kUnchanged);
  EXPECT_TRUE(serves(*store, cert_a_));
}

}  // namespace
}  // namespace credsync::injector
