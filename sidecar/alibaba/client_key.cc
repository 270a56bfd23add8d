#include "sidecar/alibaba/client_key.h"

#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "openssl/bio.h"
#include "openssl/crypto.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/pkcs12.h"
#include "openssl/provider.h"
#include "openssl/x509.h"
#include "sidecar/common/files.h"
#include "sidecar/common/json_depth.h"

namespace credsync::alibaba {
namespace {

// A client key file is about 3.5 KiB, a password a few dozen bytes.
constexpr size_t kMaxClientKeyFileBytes = size_t{64} * 1024;
constexpr size_t kMaxPasswordFileBytes = size_t{4} * 1024;
constexpr size_t kMaxKeyIdBytes = 256;

absl::Status problem(absl::string_view origin, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("client key ", origin, ": ", what));
}

// The first OpenSSL error's reason ("mac verify failure", "unsupported"), for
// messages; the queue is cleared so it does not leak into later calls.
std::string opensslReason() {
  const unsigned long code = ERR_peek_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  std::string text = reason != nullptr ? reason : "unknown OpenSSL error";
  ERR_clear_error();
  return text;
}

// The library context PKCS#12 files are opened in: OpenSSL's "default"
// provider plus "legacy". Why a dedicated context rather than walking the
// safe bags and decrypting only the key bag: the official fixture (and,
// since the SDKs' Java keytool and older OpenSSL write it, probably every
// console-issued key) encrypts the certificate bag with RC2-40, and other
// PKCS#12 writers put the key itself under RC2, RC4 or 40-bit PBEs that only
// "legacy" implements; PKCS12_parse then also verifies the MAC and handles
// every bag layout, which a hand-written walk would have to re-create. The
// context is separate so that loading "legacy" does not make those weak
// algorithms available to TLS or to anything else in the process, and it
// is made the default only on this thread and only while PKCS12_parse
// runs (OSSL_LIB_CTX_set0_default is per thread). If legacy.so is missing
// (a stripped image), modern AES-encrypted PKCS#12 files still open and the
// error for the others names the missing provider.
struct Pkcs12Context {
  OSSL_LIB_CTX* context = nullptr;
  bool has_legacy = false;
};

const Pkcs12Context& pkcs12Context() {
  // Built once and never freed: providers are process-lifetime objects.
  static const Pkcs12Context* const instance = [] {
    auto* result = new Pkcs12Context;
    result->context = OSSL_LIB_CTX_new();
    if (result->context != nullptr) {
      OSSL_PROVIDER_load(result->context, "default");
      result->has_legacy = OSSL_PROVIDER_load(result->context, "legacy") != nullptr;
    }
    ERR_clear_error();
    return result;
  }();
  return *instance;
}

// Makes `context` this thread's default library context for its lifetime.
class ScopedDefaultContext {
 public:
  explicit ScopedDefaultContext(OSSL_LIB_CTX* context)
      : previous_(context != nullptr ? OSSL_LIB_CTX_set0_default(context) : nullptr),
        active_(context != nullptr) {}
  ~ScopedDefaultContext() {
    if (active_) OSSL_LIB_CTX_set0_default(previous_);
  }
  ScopedDefaultContext(const ScopedDefaultContext&) = delete;
  ScopedDefaultContext& operator=(const ScopedDefaultContext&) = delete;

 private:
  OSSL_LIB_CTX* previous_;
  bool active_;
};

struct Pkcs12Deleter {
  void operator()(PKCS12* p12) const { PKCS12_free(p12); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * certs) const { sk_X509_pop_free(certs, X509_free); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

// Re-creates `key` in the process's default library context, so signing
// never depends on the PKCS#12 context; the DER copy is wiped.
EVP_PKEY* rehomeKey(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int length = i2d_PrivateKey(key, &der);
  if (length <= 0) return nullptr;
  const unsigned char* cursor = der;
  EVP_PKEY* copy = d2i_AutoPrivateKey(nullptr, &cursor, length);
  OPENSSL_clear_free(der, static_cast<size_t>(length));
  return copy;
}

absl::Status checkRsa(const EVP_PKEY* key, absl::string_view origin) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    return problem(origin, "the private key is not RSA (the KMS instance API signs with RSA)");
  }
  return absl::OkStatus();
}

}  // namespace

void ClientKey::KeyDeleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }

ClientKey::ClientKey(std::string key_id, evp_pkey_st* key)
    : key_id_(std::move(key_id)), key_(key) {}
ClientKey::ClientKey(ClientKey&&) noexcept = default;
ClientKey& ClientKey::operator=(ClientKey&&) noexcept = default;
ClientKey::~ClientKey() = default;

absl::StatusOr<ClientKey> ClientKey::loadFile(const std::string& client_key_file,
                                              const SecretString& password) {
  absl::StatusOr<std::string> text =
      readSmallFile(client_key_file, kMaxClientKeyFileBytes, "client key");
  if (!text.ok()) return text.status();
  absl::StatusOr<ClientKey> key = fromJson(*text, password, client_key_file);
  wipeString(*text);
  return key;
}

absl::StatusOr<ClientKey> ClientKey::fromJson(absl::string_view json, const SecretString& password,
                                              absl::string_view origin) {
  if (!jsonDepthWithin(json, 4)) return problem(origin, "not a JSON object");
  nlohmann::json document =
      nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return problem(origin, "not a JSON object");

  const auto key_id = document.find("KeyId");
  if (key_id == document.end() || !key_id->is_string() ||
      key_id->get_ref<const std::string&>().empty()) {
    return problem(origin, "KeyId is missing or not a string");
  }
  const std::string& id = key_id->get_ref<const std::string&>();
  // It travels in an HTTP header and in logs.
  if (id.size() > kMaxKeyIdBytes ||
      !absl::c_all_of(id, [](char c) { return c > 0x20 && c < 0x7F; })) {
    return problem(origin, "KeyId is not printable ASCII of at most 256 bytes");
  }

  const auto data = document.find("PrivateKeyData");
  if (data == document.end() || !data->is_string() || data->get_ref<const std::string&>().empty()) {
    return problem(origin, "PrivateKeyData is missing or not a string");
  }
  std::string& data_text = data->get_ref<std::string&>();
  std::string der;
  const bool decoded = absl::Base64Unescape(data_text, &der);
  wipeString(data_text);
  if (!decoded) {
    wipeString(der);
    return problem(origin, "PrivateKeyData is not base64");
  }

  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<PKCS12, Pkcs12Deleter> p12(
      d2i_PKCS12(nullptr, &cursor, static_cast<long>(der.size())));
  wipeString(der);
  if (p12 == nullptr) {
    ERR_clear_error();
    return problem(origin, "PrivateKeyData is not a PKCS#12 file");
  }

  const Pkcs12Context& context = pkcs12Context();
  const std::string& pass = password.reveal();
  EVP_PKEY* parsed_key = nullptr;
  X509* parsed_cert = nullptr;
  STACK_OF(X509)* parsed_chain = nullptr;
  bool parsed = false;
  bool mac_ok = true;
  {
    const ScopedDefaultContext scoped(context.context);
    // Checked first so a wrong password gets its own message rather than
    // whichever decryption failure PKCS12_parse reports.
    if (PKCS12_mac_present(p12.get()) &&
        !PKCS12_verify_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size()))) {
      mac_ok = false;
    } else {
      parsed = PKCS12_parse(p12.get(), pass.c_str(), &parsed_key, &parsed_cert, &parsed_chain) == 1;
    }
  }
  const std::unique_ptr<EVP_PKEY, PkeyDeleter> key(parsed_key);
  const std::unique_ptr<X509, X509Deleter> cert(parsed_cert);
  const std::unique_ptr<STACK_OF(X509), X509StackDeleter> chain(parsed_chain);
  if (!mac_ok) {
    ERR_clear_error();
    return problem(origin, "wrong password (the PKCS#12 integrity check failed)");
  }
  if (!parsed) {
    const std::string reason = opensslReason();
    return problem(
        origin,
        absl::StrCat("cannot decrypt the PKCS#12 (", reason, ")",
                     context.has_legacy ? ""
                                        : "; the OpenSSL legacy provider (ossl-modules/legacy.so, "
                                          "in libssl3) could not be loaded"));
  }
  if (key == nullptr) return problem(origin, "the PKCS#12 holds no private key");
  if (absl::Status status = checkRsa(key.get(), origin); !status.ok()) return status;
  EVP_PKEY* home = rehomeKey(key.get());
  if (home == nullptr) {
    return problem(origin,
                   absl::StrCat("cannot re-encode the private key (", opensslReason(), ")"));
  }
  return ClientKey(id, home);
}

absl::StatusOr<ClientKey> ClientKey::fromPrivateKeyPemForTest(std::string key_id,
                                                              const SecretString& pem) {
  const std::string origin = absl::StrCat("PEM for ", key_id);
  if (key_id.empty()) return problem(origin, "KeyId is empty");
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem.reveal().data(), static_cast<int>(pem.reveal().size())));
  if (bio == nullptr) return absl::InternalError("client key: BIO_new_mem_buf failed");
  // An empty passphrase callback: an encrypted PEM fails instead of prompting.
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (key == nullptr) {
    ERR_clear_error();
    return problem(origin, "not an unencrypted PEM private key");
  }
  if (absl::Status status = checkRsa(key.get(), origin); !status.ok()) return status;
  return ClientKey(std::move(key_id), key.release());
}

absl::StatusOr<std::string> ClientKey::sign(absl::string_view string_to_sign) const {
  if (key_ == nullptr) return absl::FailedPreconditionError("client key: moved from");
  std::unique_ptr<EVP_MD_CTX, MdContextDeleter> context(EVP_MD_CTX_new());
  size_t length = 0;
  // RSA keys default to PKCS#1 v1.5 padding, as the SDKs sign.
  if (context == nullptr ||
      EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(string_to_sign.data()),
                     string_to_sign.size()) != 1) {
    return absl::InternalError(absl::StrCat("client key: cannot sign: ", opensslReason()));
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(string_to_sign.data()),
                     string_to_sign.size()) != 1) {
    return absl::InternalError(absl::StrCat("client key: cannot sign: ", opensslReason()));
  }
  signature.resize(length);
  return absl::Base64Escape(signature);
}

absl::StatusOr<SecretString> readClientKeyPassword(const ClientKeyPasswordSource& source,
                                                   const EnvironmentLookup& env) {
  if (source.file.empty() == source.env_variable.empty()) {
    return absl::InvalidArgumentError(
        "client key password: set exactly one of a password file and an environment variable");
  }
  if (!source.file.empty()) {
    absl::StatusOr<std::string> text =
        readSmallFile(source.file, kMaxPasswordFileBytes, "client key password file");
    if (!text.ok()) return text.status();
    // As the official clients: surrounding spaces, tabs and newlines go.
    SecretString password(std::string(absl::StripAsciiWhitespace(*text)));
    wipeString(*text);
    if (password.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("client key password file ", source.file, ": empty"));
    }
    return password;
  }
  std::optional<std::string> value = env ? env(source.env_variable) : std::nullopt;
  if (!value.has_value() || value->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("client key password: environment variable ",
                                                   source.env_variable, " is not set or empty"));
  }
  SecretString password(*std::move(value));
  // The moved-from string may keep the password in its inline buffer: wipe it.
  wipeString(*value);  // NOLINT(bugprone-use-after-move)
  return password;
}

absl::StatusOr<ClientKey> loadClientKey(const std::string& client_key_file,
                                        const ClientKeyPasswordSource& password,
                                        const EnvironmentLookup& env) {
  absl::StatusOr<SecretString> secret = readClientKeyPassword(password, env);
  if (!secret.ok()) return secret.status();
  return ClientKey::loadFile(client_key_file, *secret);
}

}  // namespace credsync::alibaba
