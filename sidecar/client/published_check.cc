#include "sidecar/client/published_check.h"

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/files.h"
#include "sidecar/common/secret.h"
#include "sidecar/output/credentials_ini.h"

namespace credsync::client {
namespace {

// credentials.ini holds a few profiles; anything larger is not ours.
constexpr size_t kMaxCredentialsFileBytes = 1 << 20;

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string firstProblem(const credsync::v1::GetStatusResponse& status) {
  for (const credsync::v1::ProfileStatus& profile : status.profiles()) {
    if (profile.required() && !profile.written()) {
      return absl::StrCat(
          "profile ", profile.name(), " is not written yet",
          profile.has_last_error() ? absl::StrCat(" (", profile.last_error().message(), ")") : "");
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> checkPublished(const credsync::v1::GetStatusResponse& status,
                                           const std::string& credentials_file) {
  if (!status.ready()) {
    const std::string problem = firstProblem(status);
    return absl::FailedPreconditionError(
        absl::StrCat("credsync is not ready", problem.empty() ? "" : ": ", problem));
  }
  const std::string directory = directoryOf(credentials_file);
  std::optional<SecretString> ini;
  std::vector<std::string> checked;
  for (const credsync::v1::ProfileStatus& profile : status.profiles()) {
    if (!profile.written()) continue;
    if (profile.kind() == credsync::v1::PROFILE_KIND_GENERIC) {
      for (const std::string& file : profile.files()) {
        const std::string path = absl::StrCat(directory, "/", file);
        struct stat info {};
        if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
          return absl::FailedPreconditionError(
              absl::StrCat("profile ", profile.name(), ": ", path, " is missing"));
        }
      }
      checked.push_back(absl::StrCat(profile.name(), " (generic) ", profile.files_size(),
                                     profile.files_size() == 1 ? " file" : " files"));
      continue;
    }
    if (!ini.has_value()) {
      absl::StatusOr<std::string> content =
          readSmallFile(credentials_file, kMaxCredentialsFileBytes, "credentials file");
      if (!content.ok()) return absl::FailedPreconditionError(content.status().message());
      ini.emplace(*std::move(content));
    }
    absl::StatusOr<std::string> id = output::readIniAccessKeyId(ini->reveal(), profile.name());
    if (!id.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(credentials_file, ": ", id.status().message()));
    }
    if (*id != profile.access_key_id()) {
      return absl::FailedPreconditionError(
          absl::StrCat(credentials_file, ": profile ", profile.name(), " holds AccessKey ", *id,
                       ", credsync published ", profile.access_key_id()));
    }
    checked.push_back(absl::StrCat(profile.name(), " AccessKey ", *id, " in ", credentials_file));
  }
  return absl::StrCat("ready, generation ", status.generation(), ": ",
                      checked.empty() ? "no profile written" : absl::StrJoin(checked, "; "));
}

}  // namespace credsync::client
