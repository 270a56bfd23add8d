#pragma once

#include <string>

#include "absl/strings/string_view.h"

// Shapes of Kubernetes and Alibaba Cloud values the injector copies into a
// pod: checked before they reach the API server, so a typo is a denial
// naming the annotation rather than a pod the API server refuses later with
// a message about a field the user never wrote.
namespace credsync::injector {

// A non-negative resource quantity as the API server accepts it: 10m, 0.5,
// 128Mi, 1e3 (no sign, at most 32 characters).
bool isQuantity(absl::string_view text);

// An RFC 1123 subdomain (a ConfigMap name): lower-case alphanumerics, '-'
// and '.', starting and ending alphanumeric, at most 253 characters.
bool isDnsSubdomain(absl::string_view text);

// A region id such as cn-hangzhou: lower-case letters, digits and '-', 1 to
// 40 characters.
bool isRegionId(absl::string_view text);

// A container image reference: non-empty, at most 1024 characters, without
// spaces or control characters.
bool isImageReference(absl::string_view text);

// `text` as one line of printable ASCII for a log line or a denial: other
// bytes as \xNN, cut after `max_bytes` with "..." (pod names and keys are
// not trusted to be either).
std::string oneLine(absl::string_view text, size_t max_bytes = 256);

}  // namespace credsync::injector
