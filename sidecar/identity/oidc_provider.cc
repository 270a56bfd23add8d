#include "sidecar/identity/oidc_provider.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/secret.h"
#include "sidecar/identity/session_provider.h"

namespace credsync::identity {
namespace {

// AssumeRoleWithOIDC accepts tokens of up to 20,000 characters.
constexpr size_t kMaxTokenFileBytes = size_t{64} * 1024;

// Reads the projected service-account token. The kubelet replaces the file
// (atomically, through a symlink swap) as the token ages, so it is read anew
// for every exchange and never cached.
absl::StatusOr<SecretString> readTokenFile(const std::string& path) {
  if (path.empty()) {
    return absl::FailedPreconditionError("OIDC token file: no path configured");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "OIDC token file ", path, ": ",
        error == ENOENT ? "does not exist" : absl::StrCat("cannot open: ", errnoText(error))));
  }
  std::string buffer(kMaxTokenFileBytes + 1, '\0');
  size_t size = 0;
  int read_error = 0;
  while (size < buffer.size()) {
    const ssize_t count = ::read(fd, buffer.data() + size, buffer.size() - size);
    if (count < 0) {
      if (errno == EINTR) continue;
      read_error = errno;
      break;
    }
    if (count == 0) break;
    size += static_cast<size_t>(count);
  }
  ::close(fd);
  if (read_error != 0) {
    wipeString(buffer);
    return absl::FailedPreconditionError(
        absl::StrCat("OIDC token file ", path, ": cannot read: ", errnoText(read_error)));
  }
  if (size > kMaxTokenFileBytes) {
    wipeString(buffer);
    return absl::FailedPreconditionError(
        absl::StrCat("OIDC token file ", path, ": larger than ", kMaxTokenFileBytes, " bytes"));
  }
  // A token written by hand often ends in a newline; the JWT itself has none.
  const absl::string_view token =
      absl::StripAsciiWhitespace(absl::string_view(buffer.data(), size));
  if (token.empty()) {
    wipeString(buffer);
    return absl::FailedPreconditionError(absl::StrCat("OIDC token file ", path, ": is empty"));
  }
  SecretString secret{std::string(token)};
  wipeString(buffer);
  return secret;
}

}  // namespace

CredentialProviderPtr makeOidcProvider(const config::IdentityConfig& config,
                                       alibaba::StsClient& sts, const TimeSource& time_source,
                                       Random& random) {
  alibaba::AssumeRoleWithOidcRequest base;
  base.role_arn = config.role_arn;
  base.oidc_provider_arn = config.oidc_provider_arn;
  base.role_session_name = config.role_session_name.empty() ? "credsync" : config.role_session_name;
  base.policy = config.policy;
  base.duration = config.session_duration;
  SessionExchange exchange = [base = std::move(base), token_file = config.oidc_token_file,
                              &sts]() -> absl::StatusOr<alibaba::StsSession> {
    absl::StatusOr<SecretString> token = readTokenFile(token_file);
    if (!token.ok()) return token.status();
    alibaba::AssumeRoleWithOidcRequest request = base;
    request.oidc_token = *std::move(token);
    return sts.assumeRoleWithOidc(request);
  };
  return makeSessionProvider({"oidc", "OIDC identity", "STS"}, std::move(exchange), time_source,
                             random);
}

}  // namespace credsync::identity
