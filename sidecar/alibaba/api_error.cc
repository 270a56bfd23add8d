#include "sidecar/alibaba/api_error.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "sidecar/alibaba/response_parsing.h"
#include "sidecar/alibaba/signature.h"

namespace credsync::alibaba {
namespace {

// Upstream text reaches logs and gRPC status answers: keep it short.
constexpr size_t kMaxMessageBytes = 512;
// Codes are dotted identifiers ("InvalidAccessKeyId.NotFound"); request ids
// are UUIDs. Anything longer is not what the gateway sends.
constexpr size_t kMaxCodeBytes = 128;
constexpr size_t kMaxRequestIdBytes = 64;
// Secrets shorter than this are not searched for: they would match innocent
// text, and real keys and tokens are far longer.
constexpr size_t kMinRedactedSecretBytes = 4;

std::string redactSecrets(std::string text, absl::Span<const absl::string_view> redact) {
  for (const absl::string_view secret : redact) {
    if (secret.size() < kMinRedactedSecretBytes) continue;
    const std::string encoded = percentEncode(secret);
    // An echoed RPC string to sign holds parameters percent-encoded twice.
    const std::string twice_encoded = percentEncode(encoded);
    text = absl::StrReplaceAll(text, {{secret, "***"}, {encoded, "***"}, {twice_encoded, "***"}});
  }
  return text;
}

// SignatureDoesNotMatch echoes the server's string to sign, which in the RPC
// scheme includes every parameter, the security token among them.
std::string dropStringToSign(std::string text) {
  const std::string lower = absl::AsciiStrToLower(text);
  const size_t at = lower.find("string to sign");
  if (at == std::string::npos) return text;
  text.resize(at);
  // "... server string to sign is:" loses its dangling "server".
  absl::string_view kept = absl::StripTrailingAsciiWhitespace(text);
  if (absl::EndsWithIgnoreCase(kept, "server")) kept.remove_suffix(6);
  kept = absl::StripTrailingAsciiWhitespace(kept);
  return absl::StrCat(kept, kept.empty() ? "" : " ", "[string to sign omitted]");
}

// Control characters become spaces (no forged log lines); the result is cut
// to `max_bytes` on a UTF-8 character boundary.
std::string boundAndClean(absl::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes + 3));
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte == 0x7F ? ' ' : c);
  }
  if (out.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out.append("...");
  }
  return out;
}

// Codes and request ids are identifiers; anything else in them is replaced,
// so they can be matched and printed safely.
std::string cleanIdentifier(absl::string_view text, size_t max_bytes) {
  std::string out(text.substr(0, max_bytes));
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':') {
      c = '_';
    }
  }
  return out;
}

std::optional<ApiErrorInfo> fromJson(absl::string_view body, int http_status) {
  std::optional<nlohmann::json> document = internal::parseJsonBounded(body);
  if (!document || !document->is_object()) return std::nullopt;
  // Capitalized as POP sends them; the lowercase forms are ROA-style APIs'.
  auto member = [&](const char* capitalized, const char* lower) -> std::string {
    for (const char* name : {capitalized, lower}) {
      const auto it = document->find(name);
      if (it != document->end() && it->is_string()) return it->get<std::string>();
    }
    return "";
  };
  ApiErrorInfo info;
  info.http_status = http_status;
  info.code = member("Code", "code");
  if (info.code.empty()) return std::nullopt;
  info.message = member("Message", "message");
  info.request_id = member("RequestId", "requestId");
  return info;
}

std::string decodeXmlText(absl::string_view text) {
  if (absl::StartsWith(text, "<![CDATA[") && absl::EndsWith(text, "]]>")) {
    return std::string(text.substr(9, text.size() - 12));
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    const size_t semicolon = text.find(';', i);
    if (semicolon == absl::string_view::npos || semicolon - i > 10) {
      out.push_back('&');
      continue;
    }
    const absl::string_view entity = text.substr(i + 1, semicolon - i - 1);
    std::string replacement;
    if (entity == "lt") {
      replacement = "<";
    } else if (entity == "gt") {
      replacement = ">";
    } else if (entity == "amp") {
      replacement = "&";
    } else if (entity == "quot") {
      replacement = "\"";
    } else if (entity == "apos") {
      replacement = "'";
    } else if (absl::StartsWith(entity, "#")) {
      uint32_t code_point = 0;
      const bool hex = absl::StartsWith(entity, "#x") || absl::StartsWith(entity, "#X");
      const bool parsed = hex ? absl::SimpleHexAtoi(entity.substr(2), &code_point)
                              : absl::SimpleAtoi(entity.substr(1), &code_point);
      // Only ASCII is decoded; other characters stay escaped, which is
      // readable and cannot smuggle anything.
      if (parsed && code_point > 0 && code_point < 0x80) {
        replacement = std::string(1, static_cast<char>(code_point));
      }
    }
    if (replacement.empty()) {
      out.push_back('&');
      continue;
    }
    out.append(replacement);
    i = semicolon;
  }
  return out;
}

// The text of the first <name>...</name> in `xml`, or "".
std::string xmlElement(absl::string_view xml, absl::string_view name) {
  const std::string open = absl::StrCat("<", name, ">");
  const std::string close = absl::StrCat("</", name, ">");
  const size_t start = xml.find(open);
  if (start == absl::string_view::npos) return "";
  const size_t text_start = start + open.size();
  const size_t end = xml.find(close, text_start);
  if (end == absl::string_view::npos) return "";
  return decodeXmlText(xml.substr(text_start, end - text_start));
}

std::optional<ApiErrorInfo> fromXml(absl::string_view body, int http_status) {
  size_t root = body.find("<Error>");
  if (root == absl::string_view::npos) root = body.find("<Error ");
  if (root == absl::string_view::npos) return std::nullopt;
  const absl::string_view error = body.substr(root);
  ApiErrorInfo info;
  info.http_status = http_status;
  info.code = xmlElement(error, "Code");
  if (info.code.empty()) return std::nullopt;
  info.message = xmlElement(error, "Message");
  info.request_id = xmlElement(error, "RequestId");
  return info;
}

bool isOneOfFamily(absl::string_view code, absl::string_view family) {
  return code == family || absl::StartsWith(code, absl::StrCat(family, "."));
}

absl::StatusCode classify(absl::string_view code, int http_status) {
  if (!code.empty()) {
    if (isOneOfFamily(code, "InvalidAccessKeyId") || isOneOfFamily(code, "InvalidSecurityToken") ||
        isOneOfFamily(code, "AuthenticationFail.OIDCToken") || code == "SignatureDoesNotMatch" ||
        code == "MissingSecurityToken" || code == "Unauthorized" || code == "SignatureNotMatch") {
      return absl::StatusCode::kUnauthenticated;
    }
    if (isOneOfFamily(code, "EntityNotExist") ||
        (absl::StartsWith(code, "Forbidden.") && absl::EndsWith(code, "NotFound"))) {
      return absl::StatusCode::kNotFound;
    }
    if (isThrottlingCode(code) || absl::StartsWith(code, "ServiceUnavailable") ||
        code == "InternalFailure" || code == "InternalError") {
      return absl::StatusCode::kUnavailable;
    }
    if (isOneOfFamily(code, "Forbidden") || code == "NoPermission" ||
        absl::EndsWith(code, ".NoPermission") || isOneOfFamily(code, "AccessDenied")) {
      return absl::StatusCode::kPermissionDenied;
    }
    if (absl::StartsWith(code, "Missing") || isOneOfFamily(code, "InvalidParameter")) {
      return absl::StatusCode::kInvalidArgument;
    }
  }
  if (http_status >= 500 || http_status == 429) return absl::StatusCode::kUnavailable;
  if (http_status == 401) return absl::StatusCode::kUnauthenticated;
  if (http_status == 403) return absl::StatusCode::kPermissionDenied;
  if (http_status == 404) return absl::StatusCode::kNotFound;
  if (http_status >= 400) return absl::StatusCode::kInvalidArgument;
  // An error document outside 4xx/5xx (a 3xx, or a 200 carrying a Code) did
  // not come from the API behaving normally but from something in between,
  // a proxy or a captive portal: treat it like a transport failure.
  return absl::StatusCode::kUnavailable;
}

}  // namespace

std::optional<ApiErrorInfo> parseApiErrorBody(absl::string_view body, int http_status,
                                              absl::Span<const absl::string_view> redact) {
  if (body.size() > internal::kMaxResponseBodyBytes) return std::nullopt;
  const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(body);
  std::optional<ApiErrorInfo> info;
  if (absl::StartsWith(trimmed, "{")) {
    info = fromJson(trimmed, http_status);
  } else if (absl::StartsWith(trimmed, "<")) {
    info = fromXml(trimmed, http_status);
  }
  if (!info) return std::nullopt;
  return sanitizeApiError(*std::move(info), redact);
}

ApiErrorInfo sanitizeApiError(ApiErrorInfo error, absl::Span<const absl::string_view> redact) {
  error.code = cleanIdentifier(redactSecrets(error.code, redact), kMaxCodeBytes);
  error.request_id = cleanIdentifier(redactSecrets(error.request_id, redact), kMaxRequestIdBytes);
  error.message = boundAndClean(dropStringToSign(redactSecrets(std::move(error.message), redact)),
                                kMaxMessageBytes);
  return error;
}

absl::Status statusFromApiError(absl::string_view action, const ApiErrorInfo& error) {
  std::string message(action);
  if (error.code.empty()) {
    absl::StrAppend(&message, ": HTTP ", error.http_status);
  } else {
    absl::StrAppend(&message, ": ", error.code);
  }
  if (!error.message.empty()) absl::StrAppend(&message, ": ", error.message);
  if (!error.request_id.empty()) absl::StrAppend(&message, " (RequestId ", error.request_id, ")");
  absl::Status status =
      withUpstreamCode(absl::Status(classify(error.code, error.http_status), message), error.code);
  // "Slow down" proper: a quota code or HTTP 429. ServiceUnavailableTemporary,
  // which the outcome metric counts with them, is an overloaded server: a
  // 5xx, retried like one.
  if (isQuotaCode(error.code) || error.http_status == 429) {
    status = markThrottled(std::move(status));
  }
  return status;
}

absl::Status statusFromErrorResponse(absl::string_view action, int http_status,
                                     absl::string_view body,
                                     absl::Span<const absl::string_view> redact) {
  std::optional<ApiErrorInfo> info = parseApiErrorBody(body, http_status, redact);
  if (!info) {
    info.emplace();
    info->http_status = http_status;
    info->message = body.empty() ? "empty answer" : "the answer is not an error document";
  }
  return statusFromApiError(action, *info);
}

bool isQuotaCode(absl::string_view code) {
  return absl::StartsWith(code, "Throttling") || absl::EndsWith(code, ".Throttling");
}

bool isThrottlingCode(absl::string_view code) {
  return isQuotaCode(code) || code == "ServiceUnavailableTemporary";
}

bool isThrottlingResponse(int http_status, absl::string_view body) {
  // Error documents are a few hundred bytes; anything much larger is not
  // one, and parsing it for the metric on every failed call would cost for
  // nothing.
  constexpr size_t kMaxThrottlingBodyBytes = size_t{64} * 1024;
  if (body.size() > kMaxThrottlingBodyBytes) return false;
  const std::optional<ApiErrorInfo> error = parseApiErrorBody(body, http_status);
  return error.has_value() && isThrottlingCode(error->code);
}

}  // namespace credsync::alibaba
