#include "tests/emulator/client_key_crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/jwt.h"
#include "tests/emulator/openssl_ptr.h"

namespace credsync::emulator {
namespace {

using Pkcs12Ptr = OpenSslPtr<PKCS12, PKCS12_free>;
using Pkcs8Ptr = OpenSslPtr<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>;
using LibCtxPtr = OpenSslPtr<OSSL_LIB_CTX, OSSL_LIB_CTX_free>;

constexpr int kPbeIterations = 2048;
constexpr int kMacIterations = 1;
constexpr int kCertificateValidityDays = 5 * 365;

// A library context with the legacy provider (RC2-40 for the certificate
// bag) and the default one, made once. A private context rather than the
// process default, so nothing else in the emulator can pick a legacy
// algorithm by accident. The providers stay loaded for the process lifetime.
OSSL_LIB_CTX* legacyLibraryContext() {
  static OSSL_LIB_CTX* const context = [] {
    OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
    if (ctx == nullptr) return static_cast<OSSL_LIB_CTX*>(nullptr);
    if (OSSL_PROVIDER_load(ctx, "legacy") == nullptr ||
        OSSL_PROVIDER_load(ctx, "default") == nullptr) {
      OSSL_LIB_CTX_free(ctx);
      return static_cast<OSSL_LIB_CTX*>(nullptr);
    }
    return ctx;
  }();
  return context;
}

std::string bioContents(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

absl::Status addNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return opensslError(absl::StatusCode::kInternal, absl::StrCat("certificate subject ", field));
  }
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> selfSignedCertificate(EVP_PKEY* key, const std::string& common_name) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return opensslError(absl::StatusCode::kInternal, "X509_new");
  std::string serial_bytes = crypto::randomBytes(16);
  serial_bytes[0] = static_cast<char>((serial_bytes[0] & 0x7f) | 0x40);
  const BignumPtr serial(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes.data()),
                                   static_cast<int>(serial_bytes.size()), nullptr));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  // The fixture's subject order (research §4.1): C, ST, L, O, OU, CN.
  for (const auto& [field, value] :
       std::initializer_list<std::pair<const char*, std::string>>{{"C", "CN"},
                                                                  {"ST", "Zhejiang"},
                                                                  {"L", "Hangzhou"},
                                                                  {"O", "Alibaba"},
                                                                  {"OU", "Aliyun"},
                                                                  {"CN", common_name}}) {
    if (absl::Status status = addNameEntry(subject, field, value); !status.ok()) return status;
  }
  const bool ok = serial != nullptr && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
                  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
                  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
                  X509_time_adj_ex(X509_getm_notAfter(cert.get()), kCertificateValidityDays, 0,
                                   nullptr) != nullptr &&
                  X509_set_issuer_name(cert.get(), subject) == 1 &&
                  X509_set_pubkey(cert.get(), key) == 1 &&
                  X509_sign(cert.get(), key, EVP_sha256()) > 0;
  if (!ok) return opensslError(absl::StatusCode::kInternal, "self-signing the client key");
  return cert;
}

absl::Status describeKey(EVP_PKEY* key, IssuedClientKey* out) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    return absl::InvalidArgumentError("the client key is not an RSA key");
  }
  const BioPtr private_bio(BIO_new(BIO_s_secmem()));
  if (private_bio == nullptr || PEM_write_bio_PrivateKey(private_bio.get(), key, nullptr, nullptr,
                                                         0, nullptr, nullptr) != 1) {
    return opensslError(absl::StatusCode::kInternal, "PEM_write_bio_PrivateKey");
  }
  out->private_key_pem = SecretString(bioContents(private_bio.get()));
  const BioPtr public_bio(BIO_new(BIO_s_mem()));
  if (public_bio == nullptr || PEM_write_bio_PUBKEY(public_bio.get(), key) != 1) {
    return opensslError(absl::StatusCode::kInternal, "PEM_write_bio_PUBKEY");
  }
  out->public_key_pem = bioContents(public_bio.get());
  return absl::OkStatus();
}

// The first RSA key in a PKCS#12's unencrypted-data safes, from a shrouded or
// plain key bag. Encrypted-data safes (the certificate under RC2) are tried
// and skipped when they cannot be opened.
absl::StatusOr<EvpPkeyPtr> firstKey(PKCS12* p12, const std::string& password) {
  using SafesPtr = std::unique_ptr<STACK_OF(PKCS7), void (*)(STACK_OF(PKCS7)*)>;
  using BagsPtr = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), void (*)(STACK_OF(PKCS12_SAFEBAG)*)>;
  SafesPtr safes(PKCS12_unpack_authsafes(p12),
                 [](STACK_OF(PKCS7) * s) { sk_PKCS7_pop_free(s, PKCS7_free); });
  if (safes == nullptr) return opensslError(absl::StatusCode::kInvalidArgument, "no safes");
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* safe = sk_PKCS7_value(safes.get(), i);
    const int type = OBJ_obj2nid(safe->type);
    BagsPtr bags(nullptr, [](STACK_OF(PKCS12_SAFEBAG) * b) {
      sk_PKCS12_SAFEBAG_pop_free(b, PKCS12_SAFEBAG_free);
    });
    if (type == NID_pkcs7_data) {
      bags.reset(PKCS12_unpack_p7data(safe));
    } else if (type == NID_pkcs7_encrypted) {
      bags.reset(PKCS12_unpack_p7encdata(safe, password.c_str(), -1));
    }
    if (bags == nullptr) {
      ERR_clear_error();
      continue;
    }
    for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags.get()); ++j) {
      const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags.get(), j);
      Pkcs8Ptr decrypted;
      const PKCS8_PRIV_KEY_INFO* info = nullptr;
      if (PKCS12_SAFEBAG_get_nid(bag) == NID_pkcs8ShroudedKeyBag) {
        decrypted.reset(PKCS12_decrypt_skey(bag, password.c_str(), -1));
        info = decrypted.get();
      } else if (PKCS12_SAFEBAG_get_nid(bag) == NID_keyBag) {
        info = PKCS12_SAFEBAG_get0_p8inf(bag);
      }
      if (info == nullptr) continue;
      EvpPkeyPtr key(EVP_PKCS82PKEY(info));
      if (key != nullptr) return key;
    }
  }
  return opensslError(absl::StatusCode::kInvalidArgument, "no private key in the client key");
}

}  // namespace

absl::StatusOr<IssuedClientKey> generateClientKey(const std::string& key_id,
                                                  const std::string& password) {
  OSSL_LIB_CTX* legacy = legacyLibraryContext();
  if (legacy == nullptr) {
    return opensslError(absl::StatusCode::kInternal,
                        "cannot load OpenSSL's legacy provider (RC2 for the certificate bag)");
  }
  IssuedClientKey issued;
  issued.key_id = key_id;
  issued.password =
      SecretString(password.empty() ? crypto::base64UrlEncode(crypto::randomBytes(18)) : password);
  EvpPkeyPtr key(EVP_RSA_gen(2048));
  if (key == nullptr) return opensslError(absl::StatusCode::kInternal, "generating RSA 2048");
  auto cert = selfSignedCertificate(key.get(), key_id);
  if (!cert.ok()) return cert.status();
  const Pkcs12Ptr p12(PKCS12_create_ex(
      issued.password.reveal().c_str(), /*name=*/nullptr, key.get(), cert->get(), /*ca=*/nullptr,
      NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_pbe_WithSHA1And40BitRC2_CBC, kPbeIterations,
      /*mac_iter=*/-1, /*keytype=*/0, legacy, /*propq=*/nullptr));
  // The MAC separately, because PKCS12_create's default digest is SHA-256
  // in OpenSSL 3 and the console's files carry SHA-1.
  if (p12 == nullptr || PKCS12_set_mac(p12.get(), issued.password.reveal().c_str(), -1, nullptr, 0,
                                       kMacIterations, EVP_sha1()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "building the client key's PKCS#12");
  }
  const BioPtr der(BIO_new(BIO_s_secmem()));
  if (der == nullptr || i2d_PKCS12_bio(der.get(), p12.get()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "i2d_PKCS12_bio");
  }
  std::string der_bytes = bioContents(der.get());
  issued.private_key_data = SecretString(crypto::base64Encode(der_bytes));
  wipeString(der_bytes);
  if (absl::Status status = describeKey(key.get(), &issued); !status.ok()) return status;
  const BioPtr cert_bio(BIO_new(BIO_s_mem()));
  if (cert_bio == nullptr || PEM_write_bio_X509(cert_bio.get(), cert->get()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "PEM_write_bio_X509");
  }
  issued.certificate_pem = bioContents(cert_bio.get());
  return issued;
}

absl::StatusOr<IssuedClientKey> openClientKey(absl::string_view private_key_data,
                                              const std::string& password) {
  auto der = crypto::base64Decode(private_key_data);
  if (!der.ok()) return absl::InvalidArgumentError("PrivateKeyData is not base64");
  SecretString der_bytes(*std::move(der));
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der_bytes.reveal().data());
  const Pkcs12Ptr p12(d2i_PKCS12(nullptr, &cursor, static_cast<long>(der_bytes.reveal().size())));
  if (p12 == nullptr) {
    return opensslError(absl::StatusCode::kInvalidArgument, "PrivateKeyData is not PKCS#12");
  }
  if (PKCS12_mac_present(p12.get()) && PKCS12_verify_mac(p12.get(), password.c_str(), -1) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("wrong client key password (PKCS#12 MAC mismatch)");
  }
  auto key = firstKey(p12.get(), password);
  if (!key.ok()) return key.status();
  IssuedClientKey opened;
  opened.private_key_data = SecretString(std::string(private_key_data));
  opened.password = SecretString(password);
  if (absl::Status status = describeKey(key->get(), &opened); !status.ok()) return status;
  return opened;
}

std::string dkmsStringToSign(absl::string_view method,
                             const std::multimap<std::string, std::string>& lowercase_headers) {
  auto first = [&](const std::string& name) -> std::string {
    auto it = lowercase_headers.find(name);
    return it == lowercase_headers.end() ? "" : it->second;
  };
  std::string out = absl::StrCat(method, "\n", first("content-sha256"), "\n", first("content-type"),
                                 "\n", first("date"), "\n");
  // multimap keeps names sorted; a repeated name contributes its first value.
  const std::string* previous = nullptr;
  for (const auto& [name, value] : lowercase_headers) {
    if (!absl::StartsWith(name, "x-kms-")) continue;
    if (previous != nullptr && *previous == name) continue;
    previous = &name;
    absl::StrAppend(&out, name, ":", absl::StripAsciiWhitespace(value), "\n");
  }
  // CanonicalizedResource: the SDK returns "/" whenever a pathname is set,
  // which it always is (research §3).
  out += "/";
  return out;
}

absl::StatusOr<std::string> dkmsSign(const SecretString& private_key_pem,
                                     absl::string_view string_to_sign) {
  const std::string& pem = private_key_pem.reveal();
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(
                           bio.get(), nullptr, [](char*, int, int, void*) { return -1; }, nullptr)
                     : nullptr);
  if (key == nullptr) return opensslError(absl::StatusCode::kInvalidArgument, "not a PEM key");
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(string_to_sign.data()),
                     string_to_sign.size()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "EVP_DigestSign");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(string_to_sign.data()),
                     string_to_sign.size()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "EVP_DigestSign");
  }
  signature.resize(length);
  return crypto::base64Encode(signature);
}

bool dkmsVerify(const std::string& public_key_pem, absl::string_view string_to_sign,
                absl::string_view signature) {
  const BioPtr bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool valid =
      key != nullptr && ctx != nullptr &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(string_to_sign.data()),
                       string_to_sign.size()) == 1;
  ERR_clear_error();
  return valid;
}

}  // namespace credsync::emulator
