#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/json_depth.h"

// Defensive helpers shared by the parsers of STS and KMS answers. Internal to
// credsync_alibaba (nlohmann is a private dependency): nothing here throws,
// everything bounds what it accepts.
namespace credsync::alibaba::internal {

// Upstream answers larger than this are refused before any parsing: real
// STS/KMS answers are a few KiB, and the bound caps memory and parse time.
inline constexpr size_t kMaxResponseBodyBytes = 1 << 20;
// Real answers nest three levels deep; anything far deeper is hostile.
inline constexpr int kMaxJsonDepth = 32;

// nlohmann::json::parse without exceptions, after the size and depth checks
// above. nullopt for anything that is not one well-formed JSON document.
std::optional<nlohmann::json> parseJsonBounded(absl::string_view text,
                                               size_t max_bytes = kMaxResponseBodyBytes,
                                               int max_depth = kMaxJsonDepth);

// The JSON object of a 2xx answer, or UNAVAILABLE "<action>: malformed
// answer: <problem>" naming what is wrong (too large, empty, XML/HTML, not
// JSON, not an object) without quoting the body: a truncated or proxied
// answer may succeed on retry.
absl::StatusOr<nlohmann::json> parseJsonAnswer(absl::string_view action, absl::string_view body);

// Moves the string `object[name]` out of the parsed document (wiping the
// document's copy) when it is non-empty printable ASCII of at most
// `max_bytes`, as key ids, secrets and tokens must be: they go into HTTP
// headers and credentials.ini. Otherwise INVALID_ARGUMENT whose message is
// the problem, "<where>.<name> is empty", never the value.
absl::StatusOr<std::string> takeCredentialField(nlohmann::json& object, absl::string_view where,
                                                const char* name, size_t max_bytes);

// UNAVAILABLE "<action>: malformed answer: <problem>".
absl::Status malformedAnswer(absl::string_view action, absl::string_view problem);

// Parses exactly "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC),
// the two forms the official SDKs accept; rejects out-of-range fields
// (month 13, Feb 30, hour 24) rather than normalizing them.
std::optional<absl::Time> parseUtcTimestamp(absl::string_view text);

// Whether every byte is printable ASCII other than space (0x21-0x7E). Key ids,
// secrets and tokens are, and they end up in HTTP headers and an ini file,
// where a newline or a ';' at the wrong place would change meaning.
bool isVisibleAscii(absl::string_view text);

// Overwrites every string value in `value` (recursively; documents from
// parseJsonBounded are at most kMaxJsonDepth deep), so a parsed answer does
// not leave secrets in freed memory.
void wipeJsonStrings(nlohmann::json& value);

// Calls wipeJsonStrings on a document when it goes out of scope.
class JsonWiper {
 public:
  explicit JsonWiper(nlohmann::json& value) : value_(value) {}
  ~JsonWiper() { wipeJsonStrings(value_); }
  JsonWiper(const JsonWiper&) = delete;
  JsonWiper& operator=(const JsonWiper&) = delete;

 private:
  nlohmann::json& value_;
};

// The JSON value kind with its article, for error messages: "a number",
// "an array", "null", ...
const char* jsonTypeName(const nlohmann::json& value);

}  // namespace credsync::alibaba::internal
