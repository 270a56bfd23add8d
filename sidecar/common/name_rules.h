#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// Rules for names that the configuration refuses up front, where the user
// sees which key is wrong, and that the component using the name checks
// again. They live here so that config and that component share one rule
// without depending on each other.
namespace credsync {

// A credentials.ini section name every SDK parser reads back unchanged:
// [A-Za-z0-9_-]+. Narrower than the characters a file name allows: Node's
// `ini` nests `[a.b]` under `a` (so the SDK would not find profile "a.b");
// "DEFAULT" is the defaults section of Python's configparser and go-ini;
// "__proto__" is dropped by Node's `ini`. INVALID_ARGUMENT says why.
absl::Status validateIniProfileName(absl::string_view name);

// Whether `name` may be a RAM role name in an ECS metadata path: 1 to 64 of
// A-Z a-z 0-9 . _ - (keeps a discovered name from changing the path).
bool isValidEcsRoleName(absl::string_view name);

// Whether `arn` is acs:ram::<account id>:<kind><name>, e.g. kind "role/" for
// acs:ram::123:role/app, or "oidc-provider/" for an RRSA provider.
bool isRamArn(absl::string_view arn, absl::string_view kind);

// Whether `address` is host:port for a listener: a numeric port up to 65535
// (0 picks one), a host without spaces or control characters, IPv6 hosts in
// brackets.
bool isListenAddress(absl::string_view address);

// Whether `host` names this machine's loopback interface and nothing else:
// "localhost", a dotted-quad 127.0.0.0/8 address, or "::1" (bare or in
// brackets). Case-insensitive. A name that would need DNS (other than
// localhost) is not loopback: DNS can point it anywhere.
bool isLoopbackHost(absl::string_view host);

// The host of a "host[:port]" authority (an HTTP Host header, a listen
// address): "[::1]:80" -> "[::1]", "127.0.0.1" -> "127.0.0.1".
absl::string_view authorityHost(absl::string_view authority);

}  // namespace credsync
