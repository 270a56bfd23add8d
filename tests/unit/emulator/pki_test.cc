#include "tests/emulator/pki.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;

const std::vector<std::string> kDnsNames = {"localhost", "*.aliyuncs.com",
                                            "*.cn-hangzhou.aliyuncs.com"};
const std::vector<std::string> kIpAddresses = {"127.0.0.1", "::1"};

struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

X509Ptr loadCertificate(const std::string& path) {
  const std::string pem = readFile(path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

bool keyMatches(const std::string& cert_path, const std::string& key_path) {
  X509Ptr cert = loadCertificate(cert_path);
  const std::string pem = readFile(key_path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const bool matches =
      cert != nullptr && key != nullptr && X509_check_private_key(cert.get(), key) == 1;
  EVP_PKEY_free(key);
  return matches;
}

mode_t fileMode(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 0777;
}

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

bool haveCommand(const std::string& name) { return run("command -v " + name) == 0; }

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/pki_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    root_ = dir_template;
    state_dir_ = root_ + "/state";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  absl::StatusOr<Pki> load(const std::vector<std::string>& dns_names = kDnsNames,
                           const std::vector<std::string>& ip_addresses = kIpAddresses) {
    return loadOrCreatePki(state_dir_, dns_names, ip_addresses);
  }

  // `openssl verify` in strict mode, for a TLS server, for one host or IP.
  int opensslVerify(const Pki& pki, const std::string& check) {
    return run(absl::StrCat("openssl verify -x509_strict -purpose sslserver -CAfile ",
                            pki.ca_cert_path, " ", check, " ", pki.server_cert_path));
  }

  std::string root_;
  std::string state_dir_;
};

// Verifies that a fresh state directory gets all five files, private keys
// 0600, certificates 0644, the directory 0700, and no temporary files.
TEST_F(PkiTest, CreatesFilesWithModes) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  EXPECT_EQ(pki->ca_cert_path, state_dir_ + "/ca.pem");
  EXPECT_EQ(pki->server_cert_path, state_dir_ + "/server.pem");
  EXPECT_EQ(pki->server_key_path, state_dir_ + "/server-key.pem");
  EXPECT_EQ(pki->issuer_key_path, state_dir_ + "/issuer-key.pem");
  EXPECT_EQ(fileMode(state_dir_), 0700u);
  EXPECT_EQ(fileMode(pki->ca_cert_path), 0644u);
  EXPECT_EQ(fileMode(pki->server_cert_path), 0644u);
  EXPECT_EQ(fileMode(state_dir_ + "/ca-key.pem"), 0600u);
  EXPECT_EQ(fileMode(pki->server_key_path), 0600u);
  EXPECT_EQ(fileMode(pki->issuer_key_path), 0600u);
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

// Verifies the chain with the openssl command line in strict mode: the
// server certificate is valid for TLS serving under each requested name and
// address, including through the wildcards, and for no other.
TEST_F(PkiTest, OpensslVerifiesServerCertificate) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  EXPECT_EQ(run(absl::StrCat("openssl verify -x509_strict -CAfile ", pki->ca_cert_path, " ",
                             pki->ca_cert_path)),
            0);
  EXPECT_EQ(opensslVerify(*pki, ""), 0);
  for (const char* host : {"localhost", "sts.aliyuncs.com", "kms.cn-hangzhou.aliyuncs.com",
                           "ecs.cn-hangzhou.aliyuncs.com", "STS.AliyunCS.com"}) {
    EXPECT_EQ(opensslVerify(*pki, absl::StrCat("-verify_hostname ", host)), 0) << host;
  }
  for (const char* ip : {"127.0.0.1", "::1"}) {
    EXPECT_EQ(opensslVerify(*pki, absl::StrCat("-verify_ip ", ip)), 0) << ip;
  }
  for (const char* host : {"evil.example.com", "aliyuncs.com", "a.b.aliyuncs.com"}) {
    EXPECT_NE(opensslVerify(*pki, absl::StrCat("-verify_hostname ", host)), 0) << host;
  }
  EXPECT_NE(opensslVerify(*pki, "-verify_ip 10.0.0.1"), 0);
  // Not usable to sign other certificates or as a client certificate.
  EXPECT_NE(run(absl::StrCat("openssl verify -purpose sslclient -CAfile ", pki->ca_cert_path, " ",
                             pki->server_cert_path)),
            0);
}

// Verifies the extensions and lifetimes the brief asks for: a 10-year CA with
// critical CA:TRUE and keyCertSign/cRLSign; a 1-year serverAuth leaf with a
// random positive serial and an EC P-256 key.
TEST_F(PkiTest, CertificateProperties) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  X509Ptr ca = loadCertificate(pki->ca_cert_path);
  X509Ptr server = loadCertificate(pki->server_cert_path);
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(server, nullptr);

  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  const int ca_constraints = X509_get_ext_by_NID(ca.get(), NID_basic_constraints, -1);
  ASSERT_GE(ca_constraints, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(ca.get(), ca_constraints)), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);  // self-signed

  EXPECT_EQ(X509_check_ca(server.get()), 0);
  EXPECT_EQ(X509_check_issued(ca.get(), server.get()), X509_V_OK);
  EXPECT_TRUE(X509_get_extended_key_usage(server.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_get_key_usage(server.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey(server.get()), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(server.get())), 256);

  int days = 0;
  int seconds = 0;
  ASSERT_EQ(
      ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(ca.get()), X509_get0_notAfter(ca.get())),
      1);
  EXPECT_EQ(days, 3650);
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(server.get()),
                           X509_get0_notAfter(server.get())),
            1);
  EXPECT_EQ(days, 365);
  // notBefore is backdated a little against clock skew, never in the future.
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(server.get())), 0);

  const ASN1_INTEGER* serial = X509_get0_serialNumber(server.get());
  BIGNUM* serial_bn = ASN1_INTEGER_to_BN(serial, nullptr);
  ASSERT_NE(serial_bn, nullptr);
  EXPECT_FALSE(BN_is_negative(serial_bn));
  EXPECT_GE(BN_num_bits(serial_bn), 120);
  BN_free(serial_bn);
  EXPECT_NE(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(ca.get())), 0);

  // A second PKI draws a different serial.
  auto other = loadOrCreatePki(root_ + "/other", kDnsNames, kIpAddresses);
  ASSERT_THAT(other, IsOk());
  X509Ptr other_server = loadCertificate(other->server_cert_path);
  EXPECT_NE(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(other_server.get())), 0);
}

// Verifies the issuer key: RSA 2048, and a JWK with the RFC 7638 kid that
// verifies the tokens it signs.
TEST_F(PkiTest, IssuerKeyAndJwk) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  EXPECT_EQ(pki->issuer_jwk["kty"], "RSA");
  EXPECT_EQ(pki->issuer_jwk["alg"], "RS256");
  EXPECT_EQ(pki->issuer_jwk["use"], "sig");
  EXPECT_EQ(pki->issuer_jwk["kid"], pki->issuer_key.keyId());
  EXPECT_FALSE(pki->issuer_jwk.contains("d"));
  auto from_jwk = PublicKey::fromJwk(pki->issuer_jwk);
  ASSERT_THAT(from_jwk, IsOk());
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const std::string token = mintJwt(serviceAccountClaims({.issuer = "https://issuer",
                                                          .subject = "system:serviceaccount:a:b",
                                                          .audiences = {"sts.aliyuncs.com"},
                                                          .issued_at = now}),
                                    pki->issuer_key);
  EXPECT_THAT(verifyJwt(token, *from_jwk, now), IsOk());
  EXPECT_EQ(run(absl::StrCat("openssl pkey -noout -in ", pki->issuer_key_path,
                             " -text | grep -q 'Private-Key: (2048 bit'")),
            0);
}

// Verifies the wrong-host leaf: from the same CA, for wrong-host.invalid
// alone, so a client checking 127.0.0.1 or localhost refuses it; its key
// is 0600 and a second start keeps it.
TEST_F(PkiTest, WrongHostCertificate) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  EXPECT_EQ(pki->wrong_host_cert_path, state_dir_ + "/wrong-host.pem");
  EXPECT_EQ(pki->wrong_host_key_path, state_dir_ + "/wrong-host-key.pem");
  EXPECT_EQ(fileMode(pki->wrong_host_key_path), 0600u);
  EXPECT_TRUE(keyMatches(pki->wrong_host_cert_path, pki->wrong_host_key_path));
  const auto verify = [&](const std::string& check) {
    return run(absl::StrCat("openssl verify -x509_strict -purpose sslserver -CAfile ",
                            pki->ca_cert_path, " ", check, " ", pki->wrong_host_cert_path));
  };
  EXPECT_EQ(verify(absl::StrCat("-verify_hostname ", kWrongHostName)), 0);
  EXPECT_NE(verify("-verify_ip 127.0.0.1"), 0);
  EXPECT_NE(verify("-verify_hostname localhost"), 0);
  EXPECT_NE(verify("-verify_hostname kms.cn-hangzhou.aliyuncs.com"), 0);
  const std::string before = readFile(pki->wrong_host_cert_path);
  ASSERT_THAT(load(), IsOk());
  EXPECT_EQ(readFile(pki->wrong_host_cert_path), before);
}

// Verifies that a second start reuses every file unchanged, so clients keep
// trusting the CA and tokens minted before still verify.
TEST_F(PkiTest, ReusesExistingFiles) {
  auto first = load();
  ASSERT_THAT(first, IsOk());
  std::vector<std::string> before;
  const std::vector<std::string> files = {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem",
                                          "issuer-key.pem"};
  for (const std::string& file : files) before.push_back(readFile(state_dir_ + "/" + file));

  auto second = load();
  ASSERT_THAT(second, IsOk());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(readFile(state_dir_ + "/" + files[i]), before[i]) << files[i];
  }
  EXPECT_EQ(second->issuer_jwk, first->issuer_jwk);
  // Names in another order or case are the same set.
  auto reordered =
      load({"*.CN-HANGZHOU.aliyuncs.com", "localhost", "*.aliyuncs.com"}, {"::1", "127.0.0.1"});
  ASSERT_THAT(reordered, IsOk());
  EXPECT_EQ(readFile(state_dir_ + "/server.pem"), before[2]);
}

// Verifies that a start with other names (another --region) issues a new
// server certificate from the same CA and keeps the issuer key.
TEST_F(PkiTest, ReissuesServerCertificateWhenNamesChange) {
  auto first = load();
  ASSERT_THAT(first, IsOk());
  const std::string ca = readFile(first->ca_cert_path);
  const std::string server = readFile(first->server_cert_path);
  const std::string server_key = readFile(first->server_key_path);

  auto second = load({"localhost", "*.aliyuncs.com", "*.cn-beijing.aliyuncs.com"}, kIpAddresses);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(readFile(second->ca_cert_path), ca);
  EXPECT_NE(readFile(second->server_cert_path), server);
  EXPECT_NE(readFile(second->server_key_path), server_key);
  EXPECT_EQ(second->issuer_jwk, first->issuer_jwk);
  EXPECT_EQ(opensslVerify(*second, "-verify_hostname kms.cn-beijing.aliyuncs.com"), 0);
  EXPECT_NE(opensslVerify(*second, "-verify_hostname kms.cn-hangzhou.aliyuncs.com"), 0);
}

// Verifies that a missing, mismatched or foreign server certificate is
// replaced by one the CA issued.
TEST_F(PkiTest, ReissuesBrokenServerCertificate) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  const std::string ca = readFile(pki->ca_cert_path);

  std::filesystem::remove(pki->server_cert_path);
  ASSERT_THAT(load(), IsOk());
  EXPECT_EQ(opensslVerify(*pki, ""), 0);

  // A certificate and key from another CA.
  auto other = loadOrCreatePki(root_ + "/other", kDnsNames, kIpAddresses);
  ASSERT_THAT(other, IsOk());
  std::filesystem::copy_file(other->server_cert_path, pki->server_cert_path,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(other->server_key_path, pki->server_key_path,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_NE(opensslVerify(*pki, ""), 0);
  ASSERT_THAT(load(), IsOk());
  EXPECT_EQ(opensslVerify(*pki, ""), 0);

  // A key that does not match the certificate.
  std::filesystem::copy_file(other->server_key_path, pki->server_key_path,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_THAT(load(), IsOk());
  EXPECT_TRUE(keyMatches(pki->server_cert_path, pki->server_key_path));

  // Garbage.
  writeFile(pki->server_cert_path, "not a certificate");
  ASSERT_THAT(load(), IsOk());
  EXPECT_EQ(opensslVerify(*pki, ""), 0);
  EXPECT_EQ(readFile(pki->ca_cert_path), ca);
}

// Verifies that unusable CA or issuer material is an error rather than being
// silently replaced, which would break clients' trust or live tokens.
TEST_F(PkiTest, BrokenCaOrIssuerKeyIsAnError) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  auto other = loadOrCreatePki(root_ + "/other", kDnsNames, kIpAddresses);
  ASSERT_THAT(other, IsOk());
  const std::string ca_key_path = state_dir_ + "/ca-key.pem";
  const std::string ca_key = readFile(ca_key_path);

  std::filesystem::remove(ca_key_path);
  EXPECT_THAT(load(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ca-key.pem")));

  writeFile(ca_key_path, readFile(root_ + "/other/ca-key.pem"));
  EXPECT_THAT(load(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not the key")));

  writeFile(ca_key_path, ca_key);
  const std::string ca = readFile(pki->ca_cert_path);
  writeFile(pki->ca_cert_path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  EXPECT_THAT(load(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ca.pem")));
  writeFile(pki->ca_cert_path, ca);
  ASSERT_THAT(load(), IsOk());

  writeFile(pki->issuer_key_path, readFile(ca_key_path));  // an EC key
  EXPECT_THAT(load(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("issuer-key.pem")));
}

// Verifies that names a TLS client would not match, and bad addresses, are
// refused before anything is written.
TEST_F(PkiTest, RejectsBadNames) {
  for (const char* name : {"", "*", "*.com", "a..b", "-a.com", "a_b.com", "a.*.com",
                           "*a.example.com", "a b.com", "a.com,DNS:evil.com"}) {
    EXPECT_THAT(load({name}, {}), StatusIs(absl::StatusCode::kInvalidArgument)) << name;
  }
  for (const char* address : {"", "999.1.1.1", "localhost", "1.2.3", "::g"}) {
    EXPECT_THAT(load({}, {address}), StatusIs(absl::StatusCode::kInvalidArgument)) << address;
  }
  EXPECT_THAT(load({}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(state_dir_));
}

// Verifies that emulators starting together on one fresh directory agree on
// one CA (the state directory is locked while it is filled in).
TEST_F(PkiTest, ConcurrentStartsAgree) {
  std::vector<std::string> kids(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto pki = load();
      if (pki.ok()) kids[i] = pki->issuer_key.keyId();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& kid : kids) EXPECT_EQ(kid, kids[0]);
  EXPECT_FALSE(kids[0].empty());
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  EXPECT_EQ(pki->issuer_key.keyId(), kids[0]);
  EXPECT_EQ(opensslVerify(*pki, "-verify_ip 127.0.0.1"), 0);
}

// An httplib TLS server on 127.0.0.1 and a kernel-chosen port, serving the
// PKI's certificate on its own thread until destroyed.
class TlsServer {
 public:
  explicit TlsServer(const Pki& pki)
      : server_(pki.server_cert_path.c_str(), pki.server_key_path.c_str()) {
    server_.Get("/", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TlsServer() {
    server_.stop();
    thread_.join();
  }
  bool valid() const { return server_.is_valid() && port_ > 0; }
  int port() const { return port_; }

 private:
  httplib::SSLServer server_;
  int port_ = -1;
  std::thread thread_;
};

// Verifies a real TLS handshake: httplib's SSLServer loads the files, and an
// SSLClient verifying against ca.pem (and the IP SAN) completes a request;
// one trusting another CA is refused.
TEST_F(PkiTest, HttplibTlsHandshake) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  TlsServer server(*pki);
  ASSERT_TRUE(server.valid());

  httplib::SSLClient client("127.0.0.1", server.port());
  client.set_ca_cert_path(pki->ca_cert_path.c_str());
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(5);
  auto response = client.Get("/");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok");

  auto other = loadOrCreatePki(root_ + "/other", kDnsNames, kIpAddresses);
  ASSERT_THAT(other, IsOk());
  httplib::SSLClient distrustful("127.0.0.1", server.port());
  distrustful.set_ca_cert_path(other->ca_cert_path.c_str());
  distrustful.enable_server_certificate_verification(true);
  distrustful.set_connection_timeout(5);
  auto refused = distrustful.Get("/");
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.error(), httplib::Error::SSLServerVerification);
}

// Verifies that curl (libcurl + OpenSSL, as the sidecar uses) trusts the CA
// for the Alibaba endpoint names through the wildcards, and for 127.0.0.1.
TEST_F(PkiTest, CurlAcceptsCertificate) {
  if (!haveCommand("curl")) GTEST_SKIP() << "curl is not installed";
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  TlsServer server(*pki);
  ASSERT_TRUE(server.valid());
  const std::string port = std::to_string(server.port());
  const std::string curl = absl::StrCat("curl -fsS --max-time 10 --cacert ", pki->ca_cert_path);
  for (const char* host : {"sts.aliyuncs.com", "kms.cn-hangzhou.aliyuncs.com", "localhost"}) {
    EXPECT_EQ(run(absl::StrCat(curl, " --resolve ", host, ":", port, ":127.0.0.1 https://", host,
                               ":", port, "/")),
              0)
        << host;
  }
  EXPECT_EQ(run(absl::StrCat(curl, " https://127.0.0.1:", port, "/")), 0);
  EXPECT_NE(run(absl::StrCat(curl, " --resolve evil.example.com:", port,
                             ":127.0.0.1 https://evil.example.com:", port, "/")),
            0);
}

// Verifies that Node.js, which the official Alibaba SDKs run on, trusts the CA
// through NODE_EXTRA_CA_CERTS, for an endpoint name and for 127.0.0.1.
TEST_F(PkiTest, NodeAcceptsCertificate) {
  if (!haveCommand("node")) GTEST_SKIP() << "node is not installed";
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  TlsServer server(*pki);
  ASSERT_TRUE(server.valid());
  auto node = [&](const std::string& servername) {
    const std::string script = absl::StrCat(
        "require('https').get({host: '127.0.0.1', port: ", server.port(), ", path: '/'",
        servername.empty() ? "" : absl::StrCat(", servername: '", servername, "'"),
        "}, (r) => process.exit(r.statusCode === 200 ? 0 : 1))"
        ".on('error', (e) => { console.error(e.message); process.exit(2); })");
    return run(
        absl::StrCat("NODE_EXTRA_CA_CERTS=", pki->ca_cert_path, " node -e \"", script, "\""));
  };
  EXPECT_EQ(node(""), 0);
  EXPECT_EQ(node("sts.aliyuncs.com"), 0);
  EXPECT_EQ(node("kms.cn-hangzhou.aliyuncs.com"), 0);
  EXPECT_NE(node("evil.example.com"), 0);
  EXPECT_NE(node("a.b.aliyuncs.com"), 0);
}

}  // namespace
}  // namespace credsync::emulator

namespace credsync::emulator {
namespace {

// Verifies the KMS instance PKI: a root and a "<region> Second CA" apart
// from the test CA, and per instance a leaf for its endpoint name that
// verifies under kms-instance-ca.pem and not under ca.pem (the wrong-CA case
// clients must fail), served with the intermediate behind it.
TEST_F(PkiTest, KmsInstancePki) {
  auto pki = load();
  ASSERT_THAT(pki, IsOk());
  auto instances = loadOrCreateKmsInstancePki(state_dir_, "cn-hangzhou", {"kst-a", "kst-b"});
  ASSERT_THAT(instances, IsOk());
  EXPECT_EQ(instances->ca_file, state_dir_ + "/kms-instance-ca.pem");
  ASSERT_EQ(instances->servers.size(), 2u);
  const std::string leaf = instances->servers.at("kst-a").cert_chain_path;
  EXPECT_EQ(fileMode(instances->servers.at("kst-a").key_path), 0600u);
  auto verify = [&](const std::string& ca, const std::string& check) {
    return run(absl::StrCat("openssl verify -x509_strict -purpose sslserver -CAfile ", ca, " ",
                            check, " ", leaf));
  };
  EXPECT_EQ(verify(instances->ca_file, "-verify_hostname kst-a.cryptoservice.kms.aliyuncs.com"), 0);
  EXPECT_EQ(verify(instances->ca_file, "-verify_hostname localhost"), 0);
  EXPECT_EQ(verify(instances->ca_file, "-verify_ip 127.0.0.1"), 0);
  EXPECT_NE(verify(instances->ca_file, "-verify_hostname kst-b.cryptoservice.kms.aliyuncs.com"), 0);
  EXPECT_NE(verify(pki->ca_cert_path, ""), 0);
  EXPECT_NE(
      run(absl::StrCat("openssl verify -CAfile ", instances->ca_file, " ", pki->server_cert_path)),
      0);

  const std::string chain = readFile(leaf);
  // The leaf, then the intermediate.
  EXPECT_NE(chain.find("BEGIN CERTIFICATE", chain.find("END CERTIFICATE")), std::string::npos);
  const std::string ca_file = readFile(instances->ca_file);
  X509Ptr root = loadCertificate(instances->ca_file);
  ASSERT_NE(root, nullptr);
  char name[256];
  X509_NAME_oneline(X509_get_subject_name(root.get()), name, sizeof(name));
  EXPECT_THAT(name, HasSubstr("CN=Private KMS Root CA"));
  X509Ptr second = loadCertificate(state_dir_ + "/kms-instance-second.pem");
  X509_NAME_oneline(X509_get_subject_name(second.get()), name, sizeof(name));
  EXPECT_THAT(name, HasSubstr("CN=Private KMS cn-hangzhou Second CA"));

  // A second start keeps the CA clients already trust.
  auto again = loadOrCreateKmsInstancePki(state_dir_, "cn-hangzhou", {"kst-a"});
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(readFile(again->ca_file), ca_file);
  EXPECT_EQ(readFile(leaf), chain);

  EXPECT_THAT(loadOrCreateKmsInstancePki(state_dir_, "cn-hangzhou", {"KST.A"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace credsync::emulator
