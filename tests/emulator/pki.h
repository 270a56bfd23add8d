#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/jwt.h"

namespace credsync::emulator {

// The emulator's key material, as files in its state directory plus the OIDC
// issuer's key in memory.
struct Pki {
  std::string ca_cert_path;      // ca.pem: the test CA clients trust
  std::string server_cert_path;  // server.pem: the TLS certificate, signed by the CA
  std::string server_key_path;   // server-key.pem (0600)
  std::string issuer_key_path;   // issuer-key.pem (0600)
  SigningKey issuer_key;         // RSA 2048, signs the OIDC issuer's RS256 tokens
  nlohmann::json issuer_jwk;     // issuer_key's public JWK, kid = RFC 7638 thumbprint
  // wrong-host.pem and its key: a leaf the CA issued for kWrongHostName only,
  // which the wrong-host listener presents (POST /admin/listeners) so that
  // clients' host-name verification can be tested against a trusted chain.
  std::string wrong_host_cert_path;
  std::string wrong_host_key_path;
};

// The only name in wrong-host.pem: a reserved name (RFC 2606) no client dials.
inline constexpr char kWrongHostName[] = "wrong-host.invalid";

// Loads the PKI from `state_dir`, creating whatever is missing, so that later
// starts keep the CA (and the issuer key) that clients already trust:
//   ca.pem, ca-key.pem   a self-signed EC P-256 CA (basicConstraints CA:TRUE,
//                        pathlen 0, critical; keyUsage keyCertSign, cRLSign;
//                        10 years). Created only when ca.pem is absent.
//   server.pem,          an EC P-256 certificate for `dns_names` (wildcards
//   server-key.pem       such as *.aliyuncs.com allowed) and `ip_addresses`,
//                        extendedKeyUsage serverAuth, 1 year, random serial.
//                        Issued again whenever the stored one is missing,
//                        unreadable, not from this CA, within 30 days of
//                        expiry, or for another set of names.
//   wrong-host.pem,      like server.pem, but for kWrongHostName alone (no
//   wrong-host-key.pem   IP address), issued under the same rules.
//   issuer-key.pem       the OIDC issuer's RSA 2048 key.
// The directory is created if needed (0700). Private keys are written 0600,
// certificates 0644, each atomically (temporary file, fsync, rename), under
// an flock on state_dir/.lock so that emulators started together agree.
// Errors: InvalidArgument for a bad name or address; FailedPrecondition when
// stored CA or issuer material is unusable (ca.pem without its key, a key that
// does not match, corrupt PEM): replacing those would silently break clients'
// trust or outstanding tokens, so the caller must clear the directory.
absl::StatusOr<Pki> loadOrCreatePki(const std::string& state_dir,
                                    const std::vector<std::string>& dns_names,
                                    const std::vector<std::string>& ip_addresses);

// The private PKI of KMS instance gateways, apart from the test CA (so a
// client given the wrong CA file fails the handshake), shaped like the real
// one (research §7): "Private KMS Root CA" -> "Private KMS <region> Second
// CA" -> one server certificate per instance.
struct KmsInstancePki {
  // kms-instance-ca.pem: the root, then the intermediate; what a client gets
  // as its instance CA file (caFilePath).
  std::string ca_file;
  // Per instance id: the certificate chain file (leaf, then intermediate)
  // and key the gateway serves.
  struct ServerFiles {
    std::string cert_chain_path;
    std::string key_path;
  };
  std::map<std::string, ServerFiles> servers;
};

// Loads or creates, in `state_dir` (created by loadOrCreatePki first), the
// instance PKI: kms-instance-root{,-key}.pem (EC P-256, pathlen 1, 10 years),
// kms-instance-second{,-key}.pem (pathlen 0, 10 years), kms-instance-ca.pem,
// and for each id kms-instance-<id>{,-key}.pem, a certificate for
// <id>.cryptoservice.kms.aliyuncs.com, localhost and 127.0.0.1 (reissued
// under the rules of server.pem). Ids are lowercase LDH labels
// (INVALID_ARGUMENT otherwise). Same locking and file modes as
// loadOrCreatePki.
absl::StatusOr<KmsInstancePki> loadOrCreateKmsInstancePki(
    const std::string& state_dir, const std::string& region,
    const std::vector<std::string>& instance_ids);

}  // namespace credsync::emulator
