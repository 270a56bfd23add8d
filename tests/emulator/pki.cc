#include "tests/emulator/pki.h"
#include "tests/emulator/openssl_ptr.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/secret.h"

namespace credsync::emulator {
namespace {

constexpr int kCaValidityDays = 3650;
constexpr int kServerValidityDays = 365;
// A stored server certificate this close to expiry is replaced at startup, so
// an emulator left running for a long test session does not cross it.
constexpr int kServerRenewalDays = 30;
// notBefore is backdated so that a client whose clock runs a little behind
// the emulator's host (a VM, a container on another node) still accepts it.
constexpr long kBackdateSeconds = 3600;
constexpr mode_t kPrivateMode = 0600;
constexpr mode_t kPublicMode = 0644;

absl::Status errnoError(absl::string_view what, const std::string& path) {
  return absl::FailedPreconditionError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// --- Files -------------------------------------------------------------------

// Writes to a temporary file beside `path`, syncs it and renames it over
// `path`, so a reader (or a crash) never sees a half-written PEM. The mode is
// set before any byte is written, so a private key is never world-readable.
absl::Status writeFileAtomically(const std::string& path, absl::string_view contents, mode_t mode) {
  std::string temp_path = path + ".tmp.XXXXXX";
  const int fd = mkstemp(temp_path.data());
  if (fd < 0) return errnoError("cannot create a temporary file for", path);
  absl::Status status;
  if (fchmod(fd, mode) != 0) status = errnoError("cannot chmod", temp_path);
  for (size_t written = 0; status.ok() && written < contents.size();) {
    const ssize_t n = write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = errnoError("cannot write", temp_path);
    } else {
      written += static_cast<size_t>(n);
    }
  }
  if (status.ok() && fsync(fd) != 0) status = errnoError("cannot fsync", temp_path);
  if (close(fd) != 0 && status.ok()) status = errnoError("cannot close", temp_path);
  if (status.ok() && rename(temp_path.c_str(), path.c_str()) != 0) {
    status = errnoError("cannot rename a temporary file onto", path);
  }
  if (!status.ok()) {
    unlink(temp_path.c_str());
    return status;
  }
  // Syncs the directory entry too; best effort, as durability across a power
  // cut is a nicety for a test tool.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (const int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

// Reads a whole file into a SecretString, since it may hold a private key.
absl::StatusOr<SecretString> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errnoError("cannot read", path);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    wipeString(contents);
    return errnoError("cannot read", path);
  }
  return SecretString(std::move(contents));
}

// An exclusive flock on state_dir/.lock for the lifetime of the object: two
// emulators starting on one state directory must not both create a CA.
class DirectoryLock {
 public:
  static absl::StatusOr<std::unique_ptr<DirectoryLock>> acquire(const std::string& path) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kPrivateMode);
    if (fd < 0) return errnoError("cannot open lock file", path);
    int result;
    do {
      result = flock(fd, LOCK_EX);
    } while (result != 0 && errno == EINTR);
    if (result != 0) {
      absl::Status status = errnoError("cannot lock", path);
      close(fd);
      return status;
    }
    return std::unique_ptr<DirectoryLock>(new DirectoryLock(fd));
  }
  ~DirectoryLock() { close(fd_); }  // Closing releases the flock.
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  const int fd_;
};

// --- PEM ---------------------------------------------------------------------

absl::StatusOr<X509Ptr> loadCertificate(const std::string& path) {
  auto contents = readFile(path);
  if (!contents.ok()) return contents.status();
  const std::string& pem = contents->reveal();
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (cert == nullptr) {
    return opensslError(absl::StatusCode::kFailedPrecondition,
                        absl::StrCat(path, " is not a PEM certificate"));
  }
  return cert;
}

absl::StatusOr<EvpPkeyPtr> loadPrivateKey(const std::string& path) {
  auto contents = readFile(path);
  if (!contents.ok()) return contents.status();
  const std::string& pem = contents->reveal();
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A refusing passphrase callback: an encrypted key fails instead of prompting.
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(
                           bio.get(), nullptr, [](char*, int, int, void*) { return -1; }, nullptr)
                     : nullptr);
  if (key == nullptr) {
    return opensslError(absl::StatusCode::kFailedPrecondition,
                        absl::StrCat(path, " is not an unencrypted PEM private key"));
  }
  return key;
}

absl::StatusOr<std::string> certificatePem(X509* cert) {
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return opensslError(absl::StatusCode::kInternal, "PEM_write_bio_X509");
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

absl::StatusOr<SecretString> privateKeyPem(EVP_PKEY* key) {
  // A secure-heap memory BIO, so OpenSSL wipes its copy of the PEM on free.
  const BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return opensslError(absl::StatusCode::kInternal, "PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return SecretString(std::string(data, static_cast<size_t>(length)));
}

absl::Status writeKeyAndCertificate(EVP_PKEY* key, const std::string& key_path, X509* cert,
                                    const std::string& cert_path) {
  auto key_pem = privateKeyPem(key);
  if (!key_pem.ok()) return key_pem.status();
  auto cert_pem = certificatePem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  // The key first: a crash in between leaves a key without its certificate,
  // which the next start treats as missing and replaces.
  if (absl::Status status = writeFileAtomically(key_path, key_pem->reveal(), kPrivateMode);
      !status.ok()) {
    return status;
  }
  return writeFileAtomically(cert_path, *cert_pem, kPublicMode);
}

// --- Names -------------------------------------------------------------------

// A DNS name a TLS client will match: LDH labels, with "*" allowed only as the
// whole leftmost label of a name with at least two more labels (RFC 6125
// section 6.4.3; clients refuse "*.com"). Returns the lowercased name.
std::optional<std::string> normalizeDnsName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower.empty() || lower.size() > 253) return std::nullopt;
  const std::vector<absl::string_view> labels = absl::StrSplit(lower, '.');
  for (size_t i = 0; i < labels.size(); ++i) {
    const absl::string_view label = labels[i];
    if (label == "*" && i == 0 && labels.size() >= 3) continue;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return std::nullopt;
    }
    for (const char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return std::nullopt;
    }
  }
  return lower;
}

std::string dnsIdentity(absl::string_view lower_name) { return absl::StrCat("DNS:", lower_name); }
std::string ipIdentity(const ASN1_OCTET_STRING* octets) {
  return absl::StrCat("IP:", crypto::hexLower(absl::string_view(
                                 reinterpret_cast<const char*>(ASN1_STRING_get0_data(octets)),
                                 static_cast<size_t>(ASN1_STRING_length(octets)))));
}

// The subjectAltName entries a server certificate must carry, in the form
// sanIdentities() reads them back, so a stored certificate can be compared.
struct WantedNames {
  std::vector<std::string> dns_names;  // lowercased
  std::vector<std::string> ip_addresses;
  std::set<std::string> identities;
};

absl::StatusOr<WantedNames> wantedNames(const std::vector<std::string>& dns_names,
                                        const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) {
    return absl::InvalidArgumentError("a server certificate needs at least one name or address");
  }
  WantedNames wanted;
  for (const std::string& name : dns_names) {
    std::optional<std::string> lower = normalizeDnsName(name);
    if (!lower) return absl::InvalidArgumentError(absl::StrCat("not a DNS name: ", name));
    wanted.identities.insert(dnsIdentity(*lower));
    wanted.dns_names.push_back(*std::move(lower));
  }
  for (const std::string& address : ip_addresses) {
    const OctetStringPtr octets(a2i_IPADDRESS(address.c_str()));
    if (octets == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", address));
    }
    wanted.identities.insert(ipIdentity(octets.get()));
    wanted.ip_addresses.push_back(address);
  }
  return wanted;
}

std::set<std::string> sanIdentities(const X509* cert) {
  std::set<std::string> identities;
  const GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return identities;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const absl::string_view text(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
          static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
      identities.insert(dnsIdentity(absl::AsciiStrToLower(text)));
    } else if (name->type == GEN_IPADD) {
      identities.insert(ipIdentity(name->d.iPAddress));
    } else {
      identities.insert(absl::StrCat("other:", name->type));
    }
  }
  return identities;
}

absl::Status addSubjectAltNames(X509* cert, const WantedNames& wanted) {
  const GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return opensslError(absl::StatusCode::kInternal, "sk_GENERAL_NAME_new");
  for (const std::string& dns_name : wanted.dns_names) {
    GeneralNamePtr name(GENERAL_NAME_new());
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (name == nullptr || text == nullptr ||
        ASN1_STRING_set(text, dns_name.data(), static_cast<int>(dns_name.size())) != 1) {
      ASN1_IA5STRING_free(text);
      return opensslError(absl::StatusCode::kInternal, "building a DNS subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, text);
    if (sk_GENERAL_NAME_push(names.get(), name.get()) <= 0) {
      return opensslError(absl::StatusCode::kInternal, "sk_GENERAL_NAME_push");
    }
    name.release();  // Now owned by `names`.
  }
  for (const std::string& address : wanted.ip_addresses) {
    GeneralNamePtr name(GENERAL_NAME_new());
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(address.c_str());
    if (name == nullptr || octets == nullptr) {
      ASN1_OCTET_STRING_free(octets);
      return opensslError(absl::StatusCode::kInternal, "building an IP subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets);
    if (sk_GENERAL_NAME_push(names.get(), name.get()) <= 0) {
      return opensslError(absl::StatusCode::kInternal, "sk_GENERAL_NAME_push");
    }
    name.release();
  }
  // Not critical: the certificate also has a subject (RFC 5280 4.2.1.6).
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return opensslError(absl::StatusCode::kInternal, "adding subjectAltName");
  }
  return absl::OkStatus();
}

// --- Certificates ------------------------------------------------------------

struct CertificateSpec {
  std::string common_name;
  int validity_days = 0;
  // (NID, OpenSSL v3 config value) pairs, added in order.
  std::vector<std::pair<int, const char*>> extensions;
  const WantedNames* subject_alt_names = nullptr;
};

// Issues a certificate for `subject_key`, signed by `issuer_key`; a null
// `issuer` means self-signed.
absl::StatusOr<X509Ptr> issueCertificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                         X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return opensslError(absl::StatusCode::kInternal, "X509_new");
  // A random positive 127-bit serial: browsers and clients reject two
  // certificates from one CA with the same serial, and a reissued server
  // certificate must not collide with the one it replaces.
  std::string serial_bytes = crypto::randomBytes(16);
  serial_bytes[0] = static_cast<char>((serial_bytes[0] & 0x7f) | 0x40);
  const BignumPtr serial(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes.data()),
                                   static_cast<int>(serial_bytes.size()), nullptr));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  bool ok =
      serial != nullptr && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) != nullptr &&
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), spec.validity_days, 0, nullptr) != nullptr &&
      X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("credsync emulator"), -1,
                                 -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                 -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(),
                           issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1 &&
      X509_set_pubkey(cert.get(), subject_key) == 1;
  if (!ok) return opensslError(absl::StatusCode::kInternal, "filling in a certificate");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  X509V3_set_ctx_nodb(&ctx);
  for (const auto& [nid, value] : spec.extensions) {
    const ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (extension == nullptr || X509_add_ext(cert.get(), extension.get(), -1) != 1) {
      return opensslError(absl::StatusCode::kInternal,
                          absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
    }
  }
  if (spec.subject_alt_names != nullptr) {
    if (absl::Status status = addSubjectAltNames(cert.get(), *spec.subject_alt_names);
        !status.ok()) {
      return status;
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return opensslError(absl::StatusCode::kInternal, "signing a certificate");
  }
  return cert;
}

absl::StatusOr<EvpPkeyPtr> generateEcKey() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return opensslError(absl::StatusCode::kInternal, "generating a P-256 key");
  return key;
}

struct CertificateAuthority {
  X509Ptr cert;
  EvpPkeyPtr key;
};

absl::StatusOr<CertificateAuthority> createCa(const std::string& cert_path,
                                              const std::string& key_path) {
  auto key = generateEcKey();
  if (!key.ok()) return key.status();
  // SKI before AKI: the authority key id of a self-signed certificate is
  // taken from its own subject key id.
  const CertificateSpec spec{
      .common_name = "credsync emulator test CA",
      .validity_days = kCaValidityDays,
      .extensions = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}},
  };
  auto cert = issueCertificate(spec, key->get(), nullptr, key->get());
  if (!cert.ok()) return cert.status();
  if (absl::Status status = writeKeyAndCertificate(key->get(), key_path, cert->get(), cert_path);
      !status.ok()) {
    return status;
  }
  log::info("created the test CA", {{"path", cert_path}});
  return CertificateAuthority{*std::move(cert), *std::move(key)};
}

absl::StatusOr<CertificateAuthority> loadCa(const std::string& cert_path,
                                            const std::string& key_path) {
  auto cert = loadCertificate(cert_path);
  if (!cert.ok()) return cert.status();
  if (!std::filesystem::exists(key_path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(cert_path, " exists but ", key_path,
                     " does not; remove the state directory to start over"));
  }
  auto key = loadPrivateKey(key_path);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return opensslError(absl::StatusCode::kFailedPrecondition,
                        absl::StrCat(key_path, " is not the key of ", cert_path));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->get())) <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(cert_path, " has expired; remove the state directory to start over"));
  }
  return CertificateAuthority{*std::move(cert), *std::move(key)};
}

// Why the stored server certificate cannot be reused, or nullopt if it can.
std::optional<std::string> serverCertificateProblem(const std::string& cert_path,
                                                    const std::string& key_path,
                                                    const CertificateAuthority& ca,
                                                    const WantedNames& wanted) {
  if (!std::filesystem::exists(cert_path) || !std::filesystem::exists(key_path)) {
    return "missing";
  }
  auto cert = loadCertificate(cert_path);
  auto key = loadPrivateKey(key_path);
  if (!cert.ok() || !key.ok()) return "unreadable";
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return "key does not match";
  }
  if (X509_check_issued(ca.cert.get(), cert->get()) != X509_V_OK ||
      X509_verify(cert->get(), X509_get0_pubkey(ca.cert.get())) != 1) {
    ERR_clear_error();
    return "not issued by the CA";
  }
  time_t renew_at = std::time(nullptr) + static_cast<time_t>(kServerRenewalDays) * 24 * 3600;
  if (X509_cmp_time(X509_get0_notAfter(cert->get()), &renew_at) <= 0) return "expiring";
  if (sanIdentities(cert->get()) != wanted.identities) return "names changed";
  return std::nullopt;
}

absl::Status issueServerCertificate(const std::string& cert_path, const std::string& key_path,
                                    const CertificateAuthority& ca, const WantedNames& wanted) {
  auto key = generateEcKey();
  if (!key.ok()) return key.status();
  const CertificateSpec spec{
      .common_name =
          wanted.dns_names.empty() ? wanted.ip_addresses.front() : wanted.dns_names.front(),
      .validity_days = kServerValidityDays,
      // digitalSignature is all an ECDSA TLS server key does (no key
      // encipherment, unlike RSA key transport).
      .extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "serverAuth"},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}},
      .subject_alt_names = &wanted,
  };
  auto cert = issueCertificate(spec, key->get(), ca.cert.get(), ca.key.get());
  if (!cert.ok()) return cert.status();
  return writeKeyAndCertificate(key->get(), key_path, cert->get(), cert_path);
}

absl::StatusOr<SigningKey> loadOrCreateIssuerKey(const std::string& path) {
  if (std::filesystem::exists(path)) {
    auto pem = readFile(path);
    if (!pem.ok()) return pem.status();
    auto key = SigningKey::fromPem(pem->reveal());
    if (!key.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a usable RS256 key: ", key.status().message()));
    }
    return key;
  }
  auto key = SigningKey::generate();
  if (!key.ok()) return key.status();
  if (absl::Status status = writeFileAtomically(path, key->toPem().reveal(), kPrivateMode);
      !status.ok()) {
    return status;
  }
  log::info("created the OIDC issuer key", {{"path", path}, {"kid", key->keyId()}});
  return key;
}

// Creates a CA certificate and key: self-signed when `parent` is null, else
// issued by it.
absl::StatusOr<CertificateAuthority> createNamedCa(const std::string& common_name,
                                                   const char* basic_constraints,
                                                   const CertificateAuthority* parent,
                                                   const std::string& cert_path,
                                                   const std::string& key_path) {
  auto key = generateEcKey();
  if (!key.ok()) return key.status();
  const CertificateSpec spec{
      .common_name = common_name,
      .validity_days = kCaValidityDays,
      .extensions = {{NID_basic_constraints, basic_constraints},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}},
  };
  auto cert = issueCertificate(spec, key->get(), parent != nullptr ? parent->cert.get() : nullptr,
                               parent != nullptr ? parent->key.get() : key->get());
  if (!cert.ok()) return cert.status();
  if (absl::Status status = writeKeyAndCertificate(key->get(), key_path, cert->get(), cert_path);
      !status.ok()) {
    return status;
  }
  log::info("created a KMS instance CA", {{"path", cert_path}, {"name", common_name}});
  return CertificateAuthority{*std::move(cert), *std::move(key)};
}

}  // namespace

absl::StatusOr<KmsInstancePki> loadOrCreateKmsInstancePki(
    const std::string& state_dir, const std::string& region,
    const std::vector<std::string>& instance_ids) {
  auto lock = DirectoryLock::acquire(state_dir + "/.lock");
  if (!lock.ok()) return lock.status();
  const std::string root_path = state_dir + "/kms-instance-root.pem";
  const std::string root_key_path = state_dir + "/kms-instance-root-key.pem";
  const std::string second_path = state_dir + "/kms-instance-second.pem";
  const std::string second_key_path = state_dir + "/kms-instance-second-key.pem";
  KmsInstancePki pki;
  pki.ca_file = state_dir + "/kms-instance-ca.pem";

  const bool have_root = std::filesystem::exists(root_path);
  auto root = have_root ? loadCa(root_path, root_key_path)
                        : createNamedCa("Private KMS Root CA", "critical,CA:TRUE,pathlen:1",
                                        nullptr, root_path, root_key_path);
  if (!root.ok()) return root.status();
  auto second =
      have_root ? loadCa(second_path, second_key_path)
                : createNamedCa(absl::StrCat("Private KMS ", region, " Second CA"),
                                "critical,CA:TRUE,pathlen:0", &*root, second_path, second_key_path);
  if (!second.ok()) return second.status();
  auto root_pem = certificatePem(root->cert.get());
  auto second_pem = certificatePem(second->cert.get());
  if (!root_pem.ok()) return root_pem.status();
  if (!second_pem.ok()) return second_pem.status();
  if (absl::Status status =
          writeFileAtomically(pki.ca_file, absl::StrCat(*root_pem, *second_pem), kPublicMode);
      !status.ok()) {
    return status;
  }

  for (const std::string& id : instance_ids) {
    auto label = normalizeDnsName(id);
    if (!label || *label != id || id.find('.') != std::string::npos ||
        id.find('*') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a KMS instance id (lowercase letters, digits, '-'): ", id));
    }
    auto wanted = wantedNames({absl::StrCat(id, ".cryptoservice.kms.aliyuncs.com"), "localhost"},
                              {"127.0.0.1"});
    if (!wanted.ok()) return wanted.status();
    KmsInstancePki::ServerFiles files{state_dir + "/kms-instance-" + id + ".pem",
                                      state_dir + "/kms-instance-" + id + "-key.pem"};
    const std::optional<std::string> problem =
        have_root
            ? serverCertificateProblem(files.cert_chain_path, files.key_path, *second, *wanted)
            : std::optional<std::string>("new CA");
    if (problem) {
      if (absl::Status status =
              issueServerCertificate(files.cert_chain_path, files.key_path, *second, *wanted);
          !status.ok()) {
        return status;
      }
      // The chain the gateway sends: the leaf, then the intermediate, so a
      // client that trusts only the root can build the path.
      auto leaf = loadCertificate(files.cert_chain_path);
      if (!leaf.ok()) return leaf.status();
      auto leaf_pem = certificatePem(leaf->get());
      if (!leaf_pem.ok()) return leaf_pem.status();
      if (absl::Status status = writeFileAtomically(
              files.cert_chain_path, absl::StrCat(*leaf_pem, *second_pem), kPublicMode);
          !status.ok()) {
        return status;
      }
      log::info("issued a KMS instance certificate",
                {{"path", files.cert_chain_path}, {"instance", id}, {"reason", *problem}});
    }
    pki.servers[id] = files;
  }
  return pki;
}

absl::StatusOr<Pki> loadOrCreatePki(const std::string& state_dir,
                                    const std::vector<std::string>& dns_names,
                                    const std::vector<std::string>& ip_addresses) {
  auto wanted = wantedNames(dns_names, ip_addresses);
  if (!wanted.ok()) return wanted.status();

  std::error_code error;
  const bool existed = std::filesystem::is_directory(state_dir, error);
  if (!existed) {
    std::filesystem::create_directories(state_dir, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", state_dir, ": ", error.message()));
    }
    // It holds private keys.
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, error);
  }
  auto lock = DirectoryLock::acquire(state_dir + "/.lock");
  if (!lock.ok()) return lock.status();

  const std::string ca_cert_path = state_dir + "/ca.pem";
  const std::string ca_key_path = state_dir + "/ca-key.pem";
  const std::string server_cert_path = state_dir + "/server.pem";
  const std::string server_key_path = state_dir + "/server-key.pem";
  const std::string issuer_key_path = state_dir + "/issuer-key.pem";

  const bool have_ca = std::filesystem::exists(ca_cert_path);
  auto ca = have_ca ? loadCa(ca_cert_path, ca_key_path) : createCa(ca_cert_path, ca_key_path);
  if (!ca.ok()) return ca.status();

  const std::optional<std::string> problem =
      have_ca ? serverCertificateProblem(server_cert_path, server_key_path, *ca, *wanted)
              : std::optional<std::string>("new CA");
  if (problem) {
    if (absl::Status status =
            issueServerCertificate(server_cert_path, server_key_path, *ca, *wanted);
        !status.ok()) {
      return status;
    }
    log::info("issued the server certificate", {{"path", server_cert_path},
                                                {"reason", *problem},
                                                {"names", absl::StrJoin(dns_names, ",")},
                                                {"addresses", absl::StrJoin(ip_addresses, ",")}});
  }

  const std::string wrong_host_cert_path = state_dir + "/wrong-host.pem";
  const std::string wrong_host_key_path = state_dir + "/wrong-host-key.pem";
  auto wrong_host_names = wantedNames({kWrongHostName}, {});
  if (!wrong_host_names.ok()) return wrong_host_names.status();
  const std::optional<std::string> wrong_host_problem =
      have_ca ? serverCertificateProblem(wrong_host_cert_path, wrong_host_key_path, *ca,
                                         *wrong_host_names)
              : std::optional<std::string>("new CA");
  if (wrong_host_problem) {
    if (absl::Status status = issueServerCertificate(wrong_host_cert_path, wrong_host_key_path, *ca,
                                                     *wrong_host_names);
        !status.ok()) {
      return status;
    }
  }

  auto issuer_key = loadOrCreateIssuerKey(issuer_key_path);
  if (!issuer_key.ok()) return issuer_key.status();
  nlohmann::json issuer_jwk = issuer_key->jwk();
  return Pki{ca_cert_path,         server_cert_path,       server_key_path,
             issuer_key_path,      *std::move(issuer_key), std::move(issuer_jwk),
             wrong_host_cert_path, wrong_host_key_path};
}

}  // namespace credsync::emulator
