#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"

// Structured logs: one JSON object per line on stderr, with "time", "level",
// "msg" and the caller's fields. Secret values cannot be passed as fields
// (SecretString is rejected at compile time); text that came from upstream
// must go through a redactor before it is logged. Thread-safe.
namespace credsync::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

absl::StatusOr<Level> parseLevel(absl::string_view name);
absl::string_view levelName(Level level);

// A field value: text, integer, floating point or boolean.
class Value {
 public:
  Value(absl::string_view text) : kind_(Kind::kText), text_(text) {}
  Value(const char* text) : kind_(Kind::kText), text_(text) {}
  Value(const std::string& text) : kind_(Kind::kText), text_(text) {}
  Value(int value) : kind_(Kind::kInteger), integer_(value) {}
  Value(long value) : kind_(Kind::kInteger), integer_(value) {}
  Value(long long value) : kind_(Kind::kInteger), integer_(value) {}
  Value(unsigned value) : kind_(Kind::kInteger), integer_(value) {}
  Value(unsigned long value) : kind_(Kind::kInteger), integer_(static_cast<int64_t>(value)) {}
  Value(double value) : kind_(Kind::kReal), real_(value) {}
  Value(bool value) : kind_(Kind::kBoolean), boolean_(value) {}
  Value(const absl::Status& status) : kind_(Kind::kText), owned_(status.ToString()) {
    text_ = owned_;
  }
  Value(const SecretString&) = delete;  // Secrets never reach a log line.

  enum class Kind { kText, kInteger, kReal, kBoolean };
  Kind kind() const { return kind_; }
  absl::string_view text() const { return text_; }
  int64_t integer() const { return integer_; }
  double real() const { return real_; }
  bool boolean() const { return boolean_; }

 private:
  Kind kind_;
  absl::string_view text_;
  std::string owned_;
  int64_t integer_ = 0;
  double real_ = 0;
  bool boolean_ = false;
};

using Fields = std::initializer_list<std::pair<absl::string_view, Value>>;
using Sink = std::function<void(absl::string_view line)>;

void setLevel(Level level);
// Replaces where lines go (stderr by default); tests capture them here.
// Passing nullptr restores stderr.
void setSinkForTest(Sink sink);
// A name added to every line as "component", e.g. "credsync" or "emulator".
void setComponent(absl::string_view component);

void write(Level level, absl::string_view message, Fields fields = {});
inline void debug(absl::string_view message, Fields fields = {}) {
  write(Level::kDebug, message, fields);
}
inline void info(absl::string_view message, Fields fields = {}) {
  write(Level::kInfo, message, fields);
}
inline void warn(absl::string_view message, Fields fields = {}) {
  write(Level::kWarn, message, fields);
}
inline void error(absl::string_view message, Fields fields = {}) {
  write(Level::kError, message, fields);
}

// For a warning a flood of events would repeat: due(now) is true at most
// once per `interval` (`now` from a TimeSource). Not thread-safe: one per
// thread.
class Occasionally {
 public:
  explicit Occasionally(MonotonicTime::duration interval) : interval_(interval) {}
  bool due(MonotonicTime now) {
    if (last_ && now - *last_ < interval_) return false;
    last_ = now;
    return true;
  }

 private:
  const MonotonicTime::duration interval_;
  std::optional<MonotonicTime> last_;
};

}  // namespace credsync::log
