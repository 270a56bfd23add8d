#include "sidecar/injector/certificate_store.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/files.h"

namespace credsync::injector {
namespace {

// A certificate chain or a key is a few KiB; this only bounds a wrong path
// (a log file) from being read whole.
constexpr size_t kMaxPemBytes = size_t{1} << 20;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Never asks for a passphrase: a prompt on a pod's absent terminal would
// hang the start.
int refusePassphrase(char*, int, int, void*) { return -1; }

int64_t nanoseconds(const timespec& time) {
  return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

}  // namespace

std::string openSslReason(absl::string_view otherwise) {
  const unsigned long code = ERR_peek_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  ERR_clear_error();
  return reason == nullptr ? std::string(otherwise) : std::string(reason);
}

absl::StatusOr<std::shared_ptr<CertificatePair>> parseCertificatePair(const std::string& cert_pem,
                                                                      const std::string& key_pem,
                                                                      const std::string& cert_name,
                                                                      const std::string& key_name) {
  ERR_clear_error();
  auto pair = std::make_shared<CertificatePair>();
  BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  if (cert_bio == nullptr) return absl::ResourceExhaustedError("out of memory reading PEM");
  pair->leaf.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, refusePassphrase, nullptr));
  if (pair->leaf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("certificate file ", cert_name,
                                                   ": no PEM certificate (",
                                                   openSslReason("unknown OpenSSL error"), ")"));
  }
  for (;;) {
    X509Ptr next(PEM_read_bio_X509(cert_bio.get(), nullptr, refusePassphrase, nullptr));
    if (next == nullptr) {
      const unsigned long code = ERR_peek_last_error();
      // The end of the file ends the chain; anything else is a damaged block.
      if (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate file ", cert_name, ": unreadable chain certificate ",
          pair->intermediates.size() + 2, " (", openSslReason("unknown OpenSSL error"), ")"));
    }
    pair->intermediates.push_back(std::move(next));
  }

  BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (key_bio == nullptr) return absl::ResourceExhaustedError("out of memory reading PEM");
  pair->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, refusePassphrase, nullptr));
  if (pair->key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", key_name,
                                                   ": no unencrypted PEM private key (",
                                                   openSslReason("unknown OpenSSL error"), ")"));
  }
  if (X509_check_private_key(pair->leaf.get(), pair->key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", key_name, " does not match the certificate in ", cert_name));
  }
  tm not_after{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(pair->leaf.get()), &not_after) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("certificate file ", cert_name, ": unreadable notAfter time"));
  }
  pair->not_after = absl::FromTM(not_after, absl::UTCTimeZone());
  pair->content_hash =
      crypto::sha256(absl::StrCat(crypto::sha256(cert_pem), crypto::sha256(key_pem)));
  return pair;
}

CertificateStore::CertificateStore(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

absl::StatusOr<std::unique_ptr<CertificateStore>> CertificateStore::load(std::string cert_file,
                                                                         std::string key_file) {
  std::unique_ptr<CertificateStore> store(
      new CertificateStore(std::move(cert_file), std::move(key_file)));
  absl::StatusOr<FileIdentity> identity = store->identify();
  if (!identity.ok()) return identity.status();
  absl::StatusOr<std::shared_ptr<CertificatePair>> pair = store->read();
  if (!pair.ok()) return pair.status();
  (*pair)->generation = 1;
  {
    MutexLock lock(&store->check_mutex_);
    store->last_seen_ = *identity;
  }
  MutexLock lock(&store->mutex_);
  store->current_ = *std::move(pair);
  return store;
}

std::shared_ptr<const CertificatePair> CertificateStore::current() const {
  MutexLock lock(&mutex_);
  return current_;
}

absl::StatusOr<CertificateStore::FileIdentity> CertificateStore::identify() const {
  struct stat cert {};
  struct stat key {};
  // stat, not lstat: the identity of what the symlinks resolve to.
  if (stat(cert_file_.c_str(), &cert) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate file ", cert_file_, ": ", errnoText(errno)));
  }
  if (stat(key_file_.c_str(), &key) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", key_file_, ": ", errnoText(errno)));
  }
  FileIdentity identity;
  identity.cert_device = cert.st_dev;
  identity.cert_inode = cert.st_ino;
  identity.cert_size = cert.st_size;
  identity.cert_mtime_ns = nanoseconds(cert.st_mtim);
  identity.cert_ctime_ns = nanoseconds(cert.st_ctim);
  identity.key_device = key.st_dev;
  identity.key_inode = key.st_ino;
  identity.key_size = key.st_size;
  identity.key_mtime_ns = nanoseconds(key.st_mtim);
  identity.key_ctime_ns = nanoseconds(key.st_ctim);
  return identity;
}

absl::StatusOr<std::shared_ptr<CertificatePair>> CertificateStore::read() const {
  absl::StatusOr<std::string> cert = readSmallFile(cert_file_, kMaxPemBytes, "certificate file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = readSmallFile(key_file_, kMaxPemBytes, "key file");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::shared_ptr<CertificatePair>> pair =
      parseCertificatePair(*cert, *key, cert_file_, key_file_);
  // The key's PEM stays only in OpenSSL's EVP_PKEY.
  OPENSSL_cleanse(key->data(), key->size());
  return pair;
}

CertificateReloadResult CertificateStore::checkForChange() {
  MutexLock check_lock(&check_mutex_);
  CertificateReloadResult result;
  absl::StatusOr<FileIdentity> identity = identify();
  if (!identity.ok()) {
    // A file missing (a writer that deletes, then writes) is reported once
    // until it is back; the pair in use stays.
    if (last_seen_ == FileIdentity{}) return result;
    last_seen_ = FileIdentity{};
    result.outcome = CertificateReload::kRejected;
    result.error = identity.status();
    return result;
  }
  if (*identity == last_seen_) return result;
  last_seen_ = *identity;
  absl::StatusOr<std::shared_ptr<CertificatePair>> pair = read();
  if (!pair.ok()) {
    result.outcome = CertificateReload::kRejected;
    result.error = pair.status();
    return result;
  }
  MutexLock lock(&mutex_);
  if ((*pair)->content_hash == current_->content_hash) return result;
  (*pair)->generation = current_->generation + 1;
  current_ = *std::move(pair);
  result.outcome = CertificateReload::kLoaded;
  return result;
}

}  // namespace credsync::injector
