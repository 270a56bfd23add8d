#include "sidecar/common/logging.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/mutex.h"

namespace credsync::log {
namespace {

struct LoggerState {
  Mutex mutex;
  Level level ABSL_GUARDED_BY(mutex) = Level::kInfo;
  Sink sink ABSL_GUARDED_BY(mutex);
  std::string component ABSL_GUARDED_BY(mutex) = "credsync";
};

LoggerState& state() {
  static LoggerState* instance = new LoggerState();
  return *instance;
}

}  // namespace

absl::StatusOr<Level> parseLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError("log level must be one of debug, info, warn, error");
}

absl::string_view levelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void setLevel(Level level) {
  MutexLock lock(&state().mutex);
  state().level = level;
}

void setSinkForTest(Sink sink) {
  MutexLock lock(&state().mutex);
  state().sink = std::move(sink);
}

void setComponent(absl::string_view component) {
  MutexLock lock(&state().mutex);
  state().component = std::string(component);
}

void write(Level level, absl::string_view message, Fields fields) {
  LoggerState& logger = state();
  MutexLock lock(&logger.mutex);
  if (level < logger.level) return;
  nlohmann::ordered_json line;
  // Log stamps are the one wall-clock read outside an injected TimeSource:
  // they describe when a line was written, not a decision the code makes.
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  line["level"] = std::string(levelName(level));
  line["component"] = logger.component;
  line["msg"] = std::string(message);
  for (const auto& [key, value] : fields) {
    const std::string name(key);
    switch (value.kind()) {
      case Value::Kind::kText:
        line[name] = std::string(value.text());
        break;
      case Value::Kind::kInteger:
        line[name] = value.integer();
        break;
      case Value::Kind::kReal:
        line[name] = value.real();
        break;
      case Value::Kind::kBoolean:
        line[name] = value.boolean();
        break;
    }
  }
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (logger.sink) {
    logger.sink(text);
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

}  // namespace credsync::log
