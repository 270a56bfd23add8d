#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/http/client.h"

// The KMS instance API's ("dkms-gcs-0.2") request signature, as the official
// SDKs compute it (openapi-util GetStringToSign, docs/research/
// kms-instance-api.md §2-§3). Pure functions shared by the sidecar (to sign)
// and a verifier (to recompute): no clock, no key, no I/O.
namespace credsync::alibaba::dkms {

inline constexpr absl::string_view kApiVersion = "dkms-gcs-0.2";
inline constexpr absl::string_view kSignatureMethod = "RSA_PKCS1_SHA_256";
inline constexpr absl::string_view kContentType = "application/x-protobuf";
// Three c's: the real header name, as the SDKs and the error docs spell it.
inline constexpr absl::string_view kAccessKeyIdHeader = "x-kms-acccesskeyid";
inline constexpr absl::string_view kApiNameHeader = "x-kms-apiname";
inline constexpr absl::string_view kApiVersionHeader = "x-kms-apiversion";
inline constexpr absl::string_view kSignatureMethodHeader = "x-kms-signaturemethod";

// RFC 1123 in GMT, "Tue, 24 Nov 2026 17:00:00 GMT", with English names
// whatever the process locale.
std::string formatDate(absl::Time time);

// UPPERCASE hex SHA-256 of the body, the content-sha256 header.
std::string contentSha256(absl::string_view body);

// METHOD \n content-sha256 \n content-type \n date \n
// then every header whose lowercase name starts with "x-kms-", sorted by that
// name, as "name:trimmed value\n", then "/" (the SDKs' canonicalized
// resource for path "/"). Header names are matched case-insensitively (Go
// canonicalizes them on the wire); content-sha256, content-type and date
// are taken from `headers` too, "" when absent. A repeated x-kms- name keeps
// its first value.
std::string stringToSign(absl::string_view method, const http::Headers& headers);

// "Bearer <base64 signature>", what every official SDK sends (the docs'
// "TOKEN <sig>" is not what clients send).
std::string authorizationHeader(absl::string_view base64_signature);

// The headers of a GetSecretValue-style call except authorization, in the
// SDK's order: accept, date, x-kms-apiversion, x-kms-apiname,
// x-kms-signaturemethod, x-kms-acccesskeyid, content-type, content-sha256.
// host and content-length are left to the HTTP client (they are not signed).
http::Headers unsignedHeaders(absl::string_view api_name, absl::string_view key_id,
                              absl::string_view body, absl::Time now);

}  // namespace credsync::alibaba::dkms
