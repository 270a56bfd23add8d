#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/sync/published_set.h"

// The bodies the local API answers with. Pure: no clock, no I/O.
namespace credsync::localapi {

// Who is asking for the credentials URI document, by its User-Agent: the
// official credential libraries re-fetch at different distances before the
// document's Expiration (docs/integration.md shows each rule's source).
enum class UriClient {
  // aliyun/credentials-go: "AlibabaCloud (<os>; <arch>) Golang/<go>
  // Credentials/<version> TeaDSL/1"; asks again once 180 s or less remain.
  kGo,
  // Python and Java (and any client we cannot tell): a value within 15
  // minutes of its Expiration is stale, re-fetched before each use.
  kOther,
};
UriClient uriClientFromUserAgent(absl::string_view user_agent);

// How long before Expiration `client` fetches again: 180 s or 900 s.
absl::Duration refetchMargin(UriClient client);

// The Expiration that makes `client` fetch again `refetch_within` after
// `now` (whole seconds, rounded down, as the SDKs compare): never sooner,
// so no SDK asks on every call, and never later, so a new key reaches it
// within that bound.
absl::Time uriExpiration(absl::Time now, UriClient client, absl::Duration refetch_within);

// "YYYY-MM-DDTHH:MM:SSZ", the only form every SDK parses.
std::string formatUriTime(absl::Time time);

// The credentials URI document for a RAM credentials profile's key:
// {"Code":"Success","AccessKeyId":..,"AccessKeySecret":..,
//  "SecurityToken":"","Expiration":..}. A managed AccessKey has no token;
// Go, Python and Java accept "" and then send no x-acs-security-token.
std::string renderUriDocument(const fetch::ManagedCredential& credential, absl::Time expiration);

// KMS GetSecretValue's answer (the KMS Agent API hands it out as KMS sent
// it): the published version of `profile`, with SecretData as fetched.
std::string renderGetSecretValue(const sync::PublishedProfile& profile);

// {"Code":<code>,"Message":<message>}: the local API's error body.
std::string renderError(absl::string_view code, absl::string_view message);

}  // namespace credsync::localapi
