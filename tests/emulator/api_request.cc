#include "tests/emulator/api_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace credsync::emulator {

std::optional<std::string> ApiRequest::header(absl::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return std::nullopt;
}

std::optional<std::string> ApiRequest::param(absl::string_view name) const {
  auto it = params.find(std::string(name));
  if (it == params.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<ApiRequest> parseApiRequest(
    absl::string_view method, absl::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string body) {
  ApiRequest request;
  request.method = std::string(method);
  const size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != absl::string_view::npos) {
    auto query = parseUrlEncoded(target.substr(question + 1));
    if (!query.ok()) return query.status();
    request.query = *std::move(query);
  }
  for (const auto& [name, value] : headers) {
    request.headers.emplace_back(absl::AsciiStrToLower(name), value);
  }
  const std::string content_type = request.header("content-type").value_or("");
  if (absl::StartsWithIgnoreCase(content_type, "application/x-www-form-urlencoded")) {
    auto form = parseUrlEncoded(body);
    if (!form.ok()) return form.status();
    request.form = *std::move(form);
  }
  request.body = std::move(body);
  request.params = request.query;
  for (const auto& [name, value] : request.form) request.params[name] = value;
  request.action = request.param("Action").value_or(request.header("x-acs-action").value_or(""));
  request.version = request.param("Version").value_or(request.header("x-acs-version").value_or(""));
  return request;
}

}  // namespace credsync::emulator
