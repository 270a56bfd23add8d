#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"

namespace credsync::injector {

struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// One loaded certificate chain and its private key, checked to match.
// Immutable once built, so a TLS context can be made from it on any thread
// while the store swaps in a newer one.
struct CertificatePair {
  X509Ptr leaf;
  std::vector<X509Ptr> intermediates;  // the rest of the chain file, in order
  EvpPkeyPtr key;
  absl::Time not_after;
  // SHA-256 over both files' bytes: tells a rewrite with the same content
  // (cert-manager re-issuing nothing, kubelet re-projecting) from a change.
  std::string content_hash;
  // Counts the pairs the store has held: 1 for the first, +1 per swap.
  uint64_t generation = 0;
};

// What a check of the files found.
enum class CertificateReload {
  kUnchanged,  // same files, or new files with the same content
  kLoaded,     // a new valid pair now serves new handshakes
  kRejected,   // a new pair that cannot be used; the previous one stays
};

struct CertificateReloadResult {
  CertificateReload outcome = CertificateReload::kUnchanged;
  // kRejected only: one line naming the file and what is wrong with it.
  absl::Status error;
};

// The webhook's serving certificate, read from a PEM chain file (leaf
// first) and a PEM private key file, as a Kubernetes Secret volume or
// cert-manager provides them.
//
// checkForChange() is cheap enough to call every second: it stat()s both
// paths (following symlinks, since kubelet updates a Secret volume by
// swapping its `..data` symlink, which changes the inode the path resolves
// to) and reads the files only when that identity changed; it then parses
// them only when their bytes differ from the pair in use. A new pair that
// does not parse or whose key does not match its certificate is rejected
// once (its file identity is remembered, so an unchanged bad pair is not
// re-reported every check) and the pair in use stays. Thread-safe: current()
// may be called from any thread while another checks.
class CertificateStore {
 public:
  // Loads the initial pair. INVALID_ARGUMENT (or NOT_FOUND/PERMISSION_DENIED
  // from reading) naming the file and the problem when it is unusable.
  static absl::StatusOr<std::unique_ptr<CertificateStore>> load(std::string cert_file,
                                                                std::string key_file);

  CertificateStore(const CertificateStore&) = delete;
  CertificateStore& operator=(const CertificateStore&) = delete;

  // The pair for new handshakes; never null.
  std::shared_ptr<const CertificatePair> current() const;

  // Re-checks the files (see the class comment) and swaps in a new valid
  // pair. Calls are serialized.
  CertificateReloadResult checkForChange();

  const std::string& certFile() const { return cert_file_; }
  const std::string& keyFile() const { return key_file_; }

 private:
  // What stat() says about both files: when it is unchanged, the files are
  // not read again.
  struct FileIdentity {
    dev_t cert_device = 0;
    ino_t cert_inode = 0;
    off_t cert_size = 0;
    int64_t cert_mtime_ns = 0;
    int64_t cert_ctime_ns = 0;
    dev_t key_device = 0;
    ino_t key_inode = 0;
    off_t key_size = 0;
    int64_t key_mtime_ns = 0;
    int64_t key_ctime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
  };

  CertificateStore(std::string cert_file, std::string key_file);
  absl::StatusOr<FileIdentity> identify() const;
  absl::StatusOr<std::shared_ptr<CertificatePair>> read() const;

  const std::string cert_file_;
  const std::string key_file_;

  // Serializes checkForChange().
  Mutex check_mutex_;
  FileIdentity last_seen_ ABSL_GUARDED_BY(check_mutex_);

  mutable Mutex mutex_;
  std::shared_ptr<const CertificatePair> current_ ABSL_GUARDED_BY(mutex_);
};

// Parses a PEM certificate chain (leaf first) and a PEM private key and
// checks that the key belongs to the leaf. Errors name `cert_name` or
// `key_name` (the file paths) and say what is wrong, in one line. An
// encrypted key is refused (there is no one to type a passphrase).
absl::StatusOr<std::shared_ptr<CertificatePair>> parseCertificatePair(const std::string& cert_pem,
                                                                      const std::string& key_pem,
                                                                      const std::string& cert_name,
                                                                      const std::string& key_name);

// The reason of OpenSSL's oldest queued error ("unsupported protocol"), or
// `otherwise` when none is queued; the queue is cleared either way.
std::string openSslReason(absl::string_view otherwise);

}  // namespace credsync::injector
