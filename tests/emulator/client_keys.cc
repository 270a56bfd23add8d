#include "tests/emulator/client_keys.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"
#include "sidecar/common/logging.h"
#include "tests/emulator/client_key_crypto.h"

namespace credsync::emulator {
namespace {

bool validKeyId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// Writes `contents` to a 0600 temporary file and renames it onto `path`, so a
// reader never sees half a key.
absl::Status writePrivateFile(const std::string& path, const std::string& contents) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("cannot create ", temp, ": ", std::strerror(errno)));
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool ok = written == contents.size() && close(fd) == 0;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    unlink(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace

ClientKeyRegistry::ClientKeyRegistry(World& world, std::string files_dir)
    : world_(world), files_dir_(std::move(files_dir)) {}

absl::StatusOr<CreatedClientKey> ClientKeyRegistry::create(const ClientKeySpec& spec) {
  const std::string key_id =
      spec.key_id.empty() ? absl::StrCat("KAAP.", crypto::randomUuid()) : spec.key_id;
  if (!validKeyId(key_id)) {
    return absl::InvalidArgumentError("key_id must be letters, digits, '.', '_' or '-'");
  }
  if (find(key_id)) return absl::AlreadyExistsError(absl::StrCat("client key ", key_id, " exists"));
  // RSA key generation takes a while; outside the lock.
  absl::StatusOr<IssuedClientKey> issued =
      spec.private_key_data.empty() ? generateClientKey(key_id, spec.password)
                                    : openClientKey(spec.private_key_data, spec.password);
  if (!issued.ok()) return issued.status();
  world_.recordIssuedSecret("client_key_private_key_data", issued->private_key_data.reveal());
  world_.recordIssuedSecret("client_key_password", issued->password.reveal());
  // The RSA key as its PEM body on one line (the form the Python SDK holds
  // it in), without the armour: "-----BEGIN PRIVATE KEY-----" is no secret,
  // and the hygiene scan matches fragments, so the armour would flag any line
  // that merely names the format. The PEM's 64-character lines are aligned
  // fragments of this line, so a leaked PEM is found too.
  {
    std::string body;
    for (const char c : issued->private_key_pem.reveal()) {
      if (c != '\n' && c != '\r') body.push_back(c);
    }
    const std::string begin = "-----BEGIN PRIVATE KEY-----", end = "-----END PRIVATE KEY-----";
    if (body.rfind(begin, 0) == 0 && body.size() > begin.size() + end.size()) {
      world_.recordIssuedSecret("client_key_private_key",
                                body.substr(begin.size(), body.size() - begin.size() - end.size()));
    }
    wipeString(body);
  }

  CreatedClientKey created;
  created.key = ClientKey{key_id, issued->public_key_pem, spec.secrets, spec.instances, spec.state};
  created.private_key_data = issued->private_key_data;
  created.password = issued->password;
  {
    absl::MutexLock lock(&mutex_);
    if (!keys_.emplace(key_id, created.key).second) {
      return absl::AlreadyExistsError(absl::StrCat("client key ", key_id, " exists"));
    }
  }
  if (!files_dir_.empty()) {
    // The console's two downloads: the key file, then the password file.
    nlohmann::ordered_json file;
    file["KeyId"] = key_id;
    file["PrivateKeyData"] = created.private_key_data.reveal();
    std::string text = file.dump();
    created.key_file = absl::StrCat(files_dir_, "/clientKey_", key_id, ".json");
    created.password_file = absl::StrCat(files_dir_, "/clientKey_", key_id, "_Password.txt");
    absl::Status written = writePrivateFile(created.key_file, text);
    wipeString(text);
    if (written.ok()) written = writePrivateFile(created.password_file, created.password.reveal());
    if (!written.ok()) return written;
  }
  log::info("client key created", {{"key_id", key_id},
                                   {"imported", !spec.private_key_data.empty()},
                                   {"secrets", static_cast<int64_t>(spec.secrets.size())}});
  return created;
}

bool ClientKeyRegistry::setState(const std::string& key_id, KeyState state) {
  absl::MutexLock lock(&mutex_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return false;
  it->second.state = state;
  return true;
}

std::optional<ClientKey> ClientKeyRegistry::find(const std::string& key_id) const {
  absl::MutexLock lock(&mutex_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

}  // namespace credsync::emulator
