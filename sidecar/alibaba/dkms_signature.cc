#include "sidecar/alibaba/dkms_signature.h"

#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sidecar/common/crypto.h"

namespace credsync::alibaba::dkms {
namespace {

constexpr const char* kWeekdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int weekdayIndex(absl::Weekday day) {
  switch (day) {
    case absl::Weekday::monday:
      return 0;
    case absl::Weekday::tuesday:
      return 1;
    case absl::Weekday::wednesday:
      return 2;
    case absl::Weekday::thursday:
      return 3;
    case absl::Weekday::friday:
      return 4;
    case absl::Weekday::saturday:
      return 5;
    case absl::Weekday::sunday:
      return 6;
  }
  return 0;
}

// The first value of `name` (lowercase) among `headers`, or "".
std::string headerValue(const http::Headers& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

}  // namespace

std::string formatDate(absl::Time time) {
  const absl::CivilSecond civil = absl::ToCivilSecond(time, absl::UTCTimeZone());
  return absl::StrFormat("%s, %02d %s %04d %02d:%02d:%02d GMT",
                         kWeekdays[weekdayIndex(absl::GetWeekday(civil))], civil.day(),
                         kMonths[civil.month() - 1], civil.year(), civil.hour(), civil.minute(),
                         civil.second());
}

std::string contentSha256(absl::string_view body) {
  return absl::AsciiStrToUpper(crypto::hexLower(crypto::sha256(body)));
}

std::string stringToSign(absl::string_view method, const http::Headers& headers) {
  std::map<std::string, std::string> kms_headers;
  for (const auto& [name, value] : headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (!absl::StartsWith(lower, "x-kms-")) continue;
    kms_headers.emplace(std::move(lower), std::string(absl::StripAsciiWhitespace(value)));
  }
  std::string text =
      absl::StrCat(method, "\n", headerValue(headers, "content-sha256"), "\n",
                   headerValue(headers, "content-type"), "\n", headerValue(headers, "date"), "\n");
  for (const auto& [name, value] : kms_headers) absl::StrAppend(&text, name, ":", value, "\n");
  text.append("/");
  return text;
}

std::string authorizationHeader(absl::string_view base64_signature) {
  return absl::StrCat("Bearer ", base64_signature);
}

http::Headers unsignedHeaders(absl::string_view api_name, absl::string_view key_id,
                              absl::string_view body, absl::Time now) {
  return {
      {"accept", std::string(kContentType)},
      {"date", formatDate(now)},
      {std::string(kApiVersionHeader), std::string(kApiVersion)},
      {std::string(kApiNameHeader), std::string(api_name)},
      {std::string(kSignatureMethodHeader), std::string(kSignatureMethod)},
      {std::string(kAccessKeyIdHeader), std::string(key_id)},
      {"content-type", std::string(kContentType)},
      {"content-sha256", contentSha256(body)},
  };
}

}  // namespace credsync::alibaba::dkms
