#include "tests/emulator/secret_recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/secret.h"

namespace credsync::emulator {
namespace {

class FileSecretRecorder : public SecretRecorder {
 public:
  explicit FileSecretRecorder(int fd) : fd_(fd) {}
  ~FileSecretRecorder() override { ::close(fd_); }

  void record(absl::string_view kind, absl::string_view secret) override {
    if (secret.empty()) return;
    // JSON, so that a seeded secret with a newline still takes one line.
    std::string line =
        nlohmann::json{{"kind", std::string(kind)}, {"secret", std::string(secret)}}.dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    absl::MutexLock lock(&mutex_);
    size_t written = 0;
    while (written < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // Test-only: a full disk shows as a short file.
      written += static_cast<size_t>(n);
    }
    wipeString(line);
  }

 private:
  absl::Mutex mutex_;
  const int fd_;
};

class RecordingOidcIssuer : public OidcIssuer {
 public:
  RecordingOidcIssuer(std::unique_ptr<OidcIssuer> inner, SecretRecorder& recorder)
      : inner_(std::move(inner)), recorder_(recorder) {}

  const std::string& issuerUrl() const override { return inner_->issuerUrl(); }

  std::string mint(const MintRequest& request, absl::Time now) const override {
    std::string token = inner_->mint(request, now);
    recorder_.record("oidc_token", token);
    const size_t dot = token.rfind('.');
    if (dot != std::string::npos) {
      recorder_.record("oidc_token_signature", absl::string_view(token).substr(dot + 1));
    }
    return token;
  }

  std::variant<OidcClaims, TokenProblem> verify(const std::string& token,
                                                absl::Time now) const override {
    return inner_->verify(token, now);
  }

 private:
  const std::unique_ptr<OidcIssuer> inner_;
  SecretRecorder& recorder_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SecretRecorder>> makeFileSecretRecorder(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open ", path, " for appending: ", strerror(errno)));
  }
  return std::make_unique<FileSecretRecorder>(fd);
}

std::unique_ptr<OidcIssuer> makeRecordingOidcIssuer(std::unique_ptr<OidcIssuer> inner,
                                                    SecretRecorder& recorder) {
  return std::make_unique<RecordingOidcIssuer>(std::move(inner), recorder);
}

}  // namespace credsync::emulator
