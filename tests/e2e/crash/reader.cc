// credsync-crash-reader: reads credentials.ini by its path in a tight loop,
// as an SDK does (open, read, close every time, through the
// `credentials.ini -> ..data/credentials.ini` links), and judges every read.
// The driver of the crash-consistency test (crash_consistency.test.mjs)
// runs it while credsync rotates and is killed.
//
//   credsync-crash-reader FILE PAIRS_FILE
//
// PAIRS_FILE holds the AccessKey pairs the test knows, one
// "access_key_id access_key_secret" per line; the driver appends a pair as
// soon as the emulator's rotate answer names it. A read is bad when the file
// is missing, empty, unreadable, torn (it does not parse as the expected
// [default] profile, or lacks its trailing newline), mixed (the secret is
// not the one of that key id), or goes back to a key older than one already
// read. A key id not yet in PAIRS_FILE is looked up again for a while before
// the read counts as unknown: the sidecar may fetch a new key before the
// driver has written down the rotate answer.
//
// Runs until SIGTERM or SIGINT, then prints one JSON line of counts to
// stdout and exits 0 (1 if any read was bad). Bad reads are described on
// stderr (key ids only, never a secret).

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace {

std::atomic<bool> stop_requested{false};

void onStopSignal(int) { stop_requested.store(true); }

// How long a key id not yet in the pairs file is looked for again.
constexpr auto kUnknownKeyPatience = std::chrono::seconds(5);
// How many bad reads are described on stderr (all are counted).
constexpr int kMaxDescribed = 20;

struct Pair {
  std::string secret;
  uint64_t order = 0;  // position in the pairs file: rotations only go forward
};

// The pairs the driver wrote down so far, read incrementally.
class KnownPairs {
 public:
  explicit KnownPairs(std::string path) : path_(std::move(path)) {}

  // Reads the lines appended since the last call (complete lines only).
  void reload() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline yet: the driver is still writing it
      offset_ += line.size() + 1;
      const size_t space = line.find(' ');
      if (space == std::string::npos) continue;
      std::string id = line.substr(0, space);
      if (pairs_.count(id) == 0) {
        pairs_.emplace(std::move(id), Pair{line.substr(space + 1), next_order_++});
      }
    }
  }

  const Pair* find(const std::string& id) const {
    const auto it = pairs_.find(id);
    return it == pairs_.end() ? nullptr : &it->second;
  }

  size_t size() const { return pairs_.size(); }

 private:
  const std::string path_;
  uint64_t offset_ = 0;
  uint64_t next_order_ = 0;
  std::unordered_map<std::string, Pair> pairs_;
};

struct Profile {
  std::string id;
  std::string secret;
};

std::string trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

// Parses the whole file as credsync renders it (docs/operations.md): every
// line complete, every line a section header, a `key = value` pair, blank or
// a comment; a [default] section with exactly enable = true,
// type = access_key, access_key_id and access_key_secret. Returns false with
// `why` on the first thing out of place.
bool parseCredentials(const std::string& text, Profile& profile, std::string& why) {
  if (text.back() != '\n') {
    why = "no trailing newline";
    return false;
  }
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::string section;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        why = "malformed section header";
        return false;
      }
      section = line.substr(1, line.size() - 2);
      if (sections.count(section) > 0) {
        why = "repeated section";
        return false;
      }
      sections[section];
      continue;
    }
    const size_t equals = line.find('=');
    if (section.empty() || equals == std::string::npos) {
      why = "a line that is neither a section nor key = value";
      return false;
    }
    const std::string key = trim(line.substr(0, equals));
    const std::string value = trim(line.substr(equals + 1));
    if (key.empty() || value.empty() || sections[section].count(key) > 0) {
      why = "empty or repeated key or value";
      return false;
    }
    sections[section][key] = value;
  }
  const auto it = sections.find("default");
  if (it == sections.end()) {
    why = "no [default] section";
    return false;
  }
  const std::map<std::string, std::string>& keys = it->second;
  if (keys.size() != 4) {
    why = "[default] does not have exactly 4 keys";
    return false;
  }
  auto value = [&keys](const char* key) {
    const auto found = keys.find(key);
    return found == keys.end() ? std::string() : found->second;
  };
  if (value("enable") != "true" || value("type") != "access_key") {
    why = "enable or type wrong";
    return false;
  }
  profile.id = value("access_key_id");
  profile.secret = value("access_key_secret");
  if (profile.id.empty() || profile.secret.empty()) {
    why = "access_key_id or access_key_secret missing";
    return false;
  }
  return true;
}

struct Counts {
  uint64_t reads = 0;
  uint64_t good = 0;
  uint64_t changes = 0;                 // reads whose key differs from the read before
  std::map<std::string, uint64_t> bad;  // kind -> count
  std::unordered_set<std::string> distinct_ids;
  int described = 0;

  void badRead(const std::string& kind, const std::string& detail) {
    ++bad[kind];
    if (described++ < kMaxDescribed) {
      std::fprintf(stderr, "crash-reader: bad read #%llu: %s: %s\n",
                   static_cast<unsigned long long>(reads), kind.c_str(), detail.c_str());
    }
  }
  uint64_t badTotal() const {
    uint64_t total = 0;
    for (const auto& [kind, count] : bad) total += count;
    return total;
  }
};

// One read: open, read to the end, close, as an SDK's parser does.
// Returns 0, or the errno of the failing call with `call` naming it.
int readWhole(const char* path, std::string& content, const char*& call) {
  content.clear();
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    call = "open";
    return errno;
  }
  char buffer[4096];
  for (;;) {
    const ssize_t count = ::read(fd, buffer, sizeof(buffer));
    if (count < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      call = "read";
      return error;
    }
    if (count == 0) break;
    content.append(buffer, static_cast<size_t>(count));
  }
  if (::close(fd) != 0) {
    call = "close";
    return errno;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: credsync-crash-reader FILE PAIRS_FILE\n");
    return 2;
  }
  const char* path = argv[1];
  KnownPairs known(argv[2]);
  known.reload();

  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);

  Counts counts;
  std::string content;
  std::string last_id;
  uint64_t last_order = 0;
  bool have_last = false;
  const auto started = std::chrono::steady_clock::now();
  while (!stop_requested.load(std::memory_order_relaxed)) {
    ++counts.reads;
    const char* call = "";
    if (const int error = readWhole(path, content, call); error != 0) {
      counts.badRead(error == ENOENT ? "missing" : "unreadable",
                     std::string(call) + ": " + std::strerror(error));
      continue;
    }
    if (content.empty()) {
      counts.badRead("empty", "0 bytes");
      continue;
    }
    Profile profile;
    std::string why;
    if (!parseCredentials(content, profile, why)) {
      counts.badRead("torn", why + " (" + std::to_string(content.size()) + " bytes)");
      continue;
    }
    const Pair* pair = known.find(profile.id);
    if (pair == nullptr) {
      // The content is fixed; only the ground truth may still be on its way.
      const auto deadline = std::chrono::steady_clock::now() + kUnknownKeyPatience;
      for (;;) {
        known.reload();
        pair = known.find(profile.id);
        if (pair != nullptr || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    if (pair == nullptr) {
      counts.badRead("unknown_key", "access_key_id " + profile.id + " was never issued");
      continue;
    }
    if (pair->secret != profile.secret) {
      counts.badRead("mixed", "access_key_id " + profile.id + " with another key's secret");
      continue;
    }
    if (have_last && pair->order < last_order) {
      counts.badRead("went_back", "access_key_id " + profile.id + " after the newer " + last_id);
      continue;
    }
    ++counts.good;
    counts.distinct_ids.insert(profile.id);
    if (have_last && profile.id != last_id) ++counts.changes;
    last_id = profile.id;
    last_order = pair->order;
    have_last = true;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::string bad_json = "{";
  for (const auto& [kind, count] : counts.bad) {
    if (bad_json.size() > 1) bad_json += ",";
    bad_json += "\"" + kind + "\":" + std::to_string(count);
  }
  bad_json += "}";
  std::printf(
      "{\"reads\":%llu,\"good\":%llu,\"bad\":%llu,\"bad_by_kind\":%s,\"distinct_keys\":%zu,"
      "\"changes_seen\":%llu,\"known_pairs\":%zu,\"seconds\":%.1f}\n",
      static_cast<unsigned long long>(counts.reads), static_cast<unsigned long long>(counts.good),
      static_cast<unsigned long long>(counts.badTotal()), bad_json.c_str(),
      counts.distinct_ids.size(), static_cast<unsigned long long>(counts.changes), known.size(),
      seconds);
  std::fflush(stdout);
  return counts.badTotal() == 0 ? 0 : 1;
}
