#include "sidecar/alibaba/response_parsing.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "sidecar/common/secret.h"

namespace credsync::alibaba::internal {
namespace {

// Reads `count` decimal digits at `pos`; -1 if any is not a digit.
int digitsAt(absl::string_view text, size_t pos, size_t count) {
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    const char c = text[i];
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

std::optional<nlohmann::json> parseJsonBounded(absl::string_view text, size_t max_bytes,
                                               int max_depth) {
  if (text.size() > max_bytes || !jsonDepthWithin(text, max_depth)) return std::nullopt;
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                                               /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

absl::StatusOr<std::string> takeCredentialField(nlohmann::json& object, absl::string_view where,
                                                const char* name, size_t max_bytes) {
  const std::string field = absl::StrCat(where, ".", name);
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is missing"));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", jsonTypeName(*it), ", not a string"));
  }
  std::string& value = it->get_ref<std::string&>();
  absl::Status problem;
  if (value.empty()) {
    problem = absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  } else if (value.size() > max_bytes) {
    problem =
        absl::InvalidArgumentError(absl::StrCat(field, " is longer than ", max_bytes, " bytes"));
  } else if (!isVisibleAscii(value)) {
    problem = absl::InvalidArgumentError(
        absl::StrCat(field, " has characters other than printable ASCII"));
  }
  if (!problem.ok()) {
    wipeString(value);
    return problem;
  }
  std::string out = std::move(value);
  wipeString(value);
  return out;
}

absl::Status malformedAnswer(absl::string_view action, absl::string_view problem) {
  return absl::UnavailableError(absl::StrCat(action, ": malformed answer: ", problem));
}

absl::StatusOr<nlohmann::json> parseJsonAnswer(absl::string_view action, absl::string_view body) {
  if (body.size() > kMaxResponseBodyBytes) {
    return malformedAnswer(
        action, absl::StrCat("the body of ", body.size(), " bytes exceeds the 1 MiB limit"));
  }
  std::optional<nlohmann::json> document = parseJsonBounded(body);
  if (!document) {
    const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(body);
    if (trimmed.empty()) return malformedAnswer(action, "the body is empty");
    if (absl::StartsWith(trimmed, "<")) {
      return malformedAnswer(
          action, absl::StrCat("the body is XML or HTML, not JSON (", body.size(), " bytes)"));
    }
    if (!jsonDepthWithin(body, kMaxJsonDepth)) {
      return malformedAnswer(action,
                             absl::StrCat("the body nests deeper than ", kMaxJsonDepth, " levels"));
    }
    return malformedAnswer(action,
                           absl::StrCat("the body is not valid JSON (", body.size(), " bytes)"));
  }
  if (!document->is_object()) {
    const std::string problem =
        absl::StrCat("the body is ", jsonTypeName(*document), ", not a JSON object");
    wipeJsonStrings(*document);
    return malformedAnswer(action, problem);
  }
  return std::move(*document);
}

std::optional<absl::Time> parseUtcTimestamp(absl::string_view text) {
  // 0123456789012345678901234
  // YYYY-MM-DDTHH:MM:SSZ
  // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (text.size() != 20 && text.size() != 24) return std::nullopt;
  if (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      text.back() != 'Z') {
    return std::nullopt;
  }
  int millis = 0;
  if (text.size() == 24) {
    if (text[19] != '.') return std::nullopt;
    millis = digitsAt(text, 20, 3);
    if (millis < 0) return std::nullopt;
  }
  const int year = digitsAt(text, 0, 4);
  const int month = digitsAt(text, 5, 2);
  const int day = digitsAt(text, 8, 2);
  const int hour = digitsAt(text, 11, 2);
  const int minute = digitsAt(text, 14, 2);
  const int second = digitsAt(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
    return std::nullopt;
  }
  // CivilSecond normalizes (Feb 30 -> Mar 2); a round trip detects that.
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.year() != year || civil.month() != month || civil.day() != day ||
      civil.hour() != hour || civil.minute() != minute || civil.second() != second) {
    return std::nullopt;
  }
  return absl::FromCivil(civil, absl::UTCTimeZone()) + absl::Milliseconds(millis);
}

bool isVisibleAscii(absl::string_view text) {
  for (const char c : text) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

void wipeJsonStrings(nlohmann::json& value) {
  if (value.is_string()) {
    wipeString(value.get_ref<std::string&>());
  } else if (value.is_structured()) {
    for (auto& element : value) wipeJsonStrings(element);
  }
}

const char* jsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    case nlohmann::json::value_t::binary:
      return "binary data";
    case nlohmann::json::value_t::discarded:
      return "invalid";
  }
  return "unknown";
}

}  // namespace credsync::alibaba::internal
