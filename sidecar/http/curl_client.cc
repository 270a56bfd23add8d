#include "sidecar/http/curl_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/mutex.h"

namespace credsync::http {
namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// curl_global_init is not thread-safe and must run before any other libcurl
// call; it is never undone because handles may outlive any one client.
CURLcode globalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

// RFC 9110 token characters, for methods and header names.
bool isToken(absl::string_view text) {
  if (text.empty()) {
    return false;
  }
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      continue;
    }
    if (absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// CR, LF or NUL in a value would let a caller's data split the request.
bool isSafeHeaderValue(absl::string_view value) {
  return value.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos;
}

long toCurlMillis(absl::Duration duration) {
  if (duration == absl::InfiniteDuration()) {
    return 0;  // libcurl: no limit.
  }
  const int64_t millis = absl::ToInt64Milliseconds(duration);
  return static_cast<long>(std::clamp<int64_t>(millis, 1, LONG_MAX));
}

std::string urlPart(CURLU* url, CURLUPart part, unsigned int flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, flags) != CURLUE_OK) {
    return "";
  }
  CurlString owned(raw);
  return owned ? std::string(owned.get()) : "";
}

// The request's URL, parsed once: libcurl sends exactly what we validated,
// and messages can name the host without the path or query.
struct Target {
  UrlHandle url;
  std::string host_port;
  // Pieces of the URL that may carry credentials; scrubbed from messages.
  std::vector<std::string> sensitive;
};

absl::StatusOr<Target> parseTarget(const std::string& text) {
  Target target;
  target.url.reset(curl_url());
  if (target.url == nullptr) {
    return absl::InternalError("curl_url() failed");
  }
  // No default or guessed scheme: "host/path" is a caller bug, not http.
  const CURLUcode parsed = curl_url_set(target.url.get(), CURLUPART_URL, text.c_str(), 0);
  if (parsed != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("malformed URL: ", curl_url_strerror(parsed)));
  }
  const std::string scheme = urlPart(target.url.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported URL scheme '", scheme, "'"));
  }
  target.host_port = absl::StrCat(urlPart(target.url.get(), CURLUPART_HOST), ":",
                                  urlPart(target.url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT));
  for (CURLUPart part : {CURLUPART_QUERY, CURLUPART_PASSWORD, CURLUPART_FRAGMENT}) {
    std::string piece = urlPart(target.url.get(), part);
    // Shorter pieces cannot hide a credential; replacing them would only
    // mangle the message (a query "1" would redact digits of the port).
    if (piece.size() >= 4) {
      target.sensitive.push_back(std::move(piece));
    }
  }
  return target;
}

absl::StatusOr<HeaderList> buildHeaderList(const Headers& headers) {
  HeaderList list;
  bool has_expect = false;
  auto append = [&list](const std::string& line) {
    curl_slist* grown = curl_slist_append(list.get(), line.c_str());
    if (grown == nullptr) {
      return false;
    }
    (void)list.release();  // curl_slist_append returned the same head or a new one.
    list.reset(grown);
    return true;
  };
  for (const auto& [name, value] : headers) {
    if (!isToken(name)) {
      return absl::InvalidArgumentError("invalid request header name");
    }
    if (!isSafeHeaderValue(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid characters in value of request header ", name));
    }
    has_expect = has_expect || absl::EqualsIgnoreCase(name, "Expect");
    // libcurl reads "Name:" as "remove Name"; "Name;" is how to send it empty.
    const std::string line =
        value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    if (!append(line)) {
      return absl::InternalError("curl_slist_append failed");
    }
  }
  // libcurl adds "Expect: 100-continue" to large bodies and then waits up to a
  // second for a reply many servers never send.
  if (!has_expect && !append("Expect:")) {
    return absl::InternalError("curl_slist_append failed");
  }
  return list;
}

// What one transfer has received so far; the callbacks' user data.
struct Transfer {
  explicit Transfer(size_t limit) : limit(limit) {}

  // Counts n more bytes against the cap; false once the cap is passed.
  bool admit(size_t n) {
    if (n > limit - received) {
      too_large = true;
      return false;
    }
    received += n;
    return true;
  }

  const size_t limit;
  size_t received = 0;
  bool too_large = false;
  Response response;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!transfer->admit(n)) {
    return CURL_WRITEFUNC_ERROR;
  }
  transfer->response.body.append(data, n);
  return n;
}

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!transfer->admit(n)) {
    return 0;  // Any count but n aborts the transfer.
  }
  Headers& headers = transfer->response.headers;
  const absl::string_view line = absl::StripTrailingAsciiWhitespace(absl::string_view(data, n));
  // A status line starts a new response: interim 1xx answers and a proxy's
  // CONNECT reply must not leak their headers into the final response.
  if (absl::StartsWith(line, "HTTP/")) {
    headers.clear();
    return n;
  }
  if (line.empty()) {
    return n;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    // Obsolete line folding continues the previous header's value.
    if (!headers.empty()) {
      absl::StrAppend(&headers.back().second, " ", absl::StripLeadingAsciiWhitespace(line));
    }
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) {
    return n;
  }
  headers.emplace_back(std::string(line.substr(0, colon)),
                       std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

absl::StatusCode codeFor(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::StatusCode::kInvalidArgument;
    case CURLE_FILESIZE_EXCEEDED:
      return absl::StatusCode::kResourceExhausted;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
      return absl::StatusCode::kFailedPrecondition;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

class CurlClient::Impl {
 public:
  explicit Impl(const CurlClientOptions& options) : options_(options) {}

  absl::StatusOr<Response> send(const Request& request) {
    if (const CURLcode init = globalInit(); init != CURLE_OK) {
      return absl::InternalError(
          absl::StrCat("curl_global_init failed: ", curl_easy_strerror(init)));
    }
    if (!isToken(request.method)) {
      return absl::InvalidArgumentError("invalid HTTP method");
    }
    absl::StatusOr<Target> target = parseTarget(request.url);
    if (!target.ok()) {
      return target.status();
    }
    absl::StatusOr<HeaderList> headers = buildHeaderList(request.headers);
    if (!headers.ok()) {
      return headers.status();
    }

    EasyHandle handle = acquire();
    if (handle == nullptr) {
      return absl::InternalError("curl_easy_init failed");
    }

    Transfer transfer(options_.max_response_bytes);
    char error_text[CURL_ERROR_SIZE] = {};
    CURLcode code = configure(handle.get(), request, *target, headers->get(), transfer, error_text);
    if (code == CURLE_OK) {
      code = curl_easy_perform(handle.get());
    }

    long connects = 0;
    if (curl_easy_getinfo(handle.get(), CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
        connects > 0) {
      connections_opened_.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);
    }
    long status = 0;
    if (code == CURLE_OK) {
      code = curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
    }
    release(std::move(handle));

    if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "response from ", target->host_port, " exceeds ", options_.max_response_bytes, " bytes"));
    }
    if (code != CURLE_OK) {
      std::string detail = error_text[0] != '\0' ? error_text : curl_easy_strerror(code);
      for (const std::string& piece : target->sensitive) {
        absl::StrReplaceAll({{piece, "<redacted>"}}, &detail);
      }
      return absl::Status(codeFor(code), absl::StrCat("HTTP ", request.method, " to ",
                                                      target->host_port, " failed: ", detail));
    }
    transfer.response.status = static_cast<int>(status);
    return std::move(transfer.response);
  }

  uint64_t connectionsOpened() const { return connections_opened_.load(std::memory_order_relaxed); }

 private:
  // Sets every option of one transfer on a handle fresh from curl_easy_reset.
  // Proxy options are deliberately left unset: that is what makes libcurl read
  // http_proxy / https_proxy / no_proxy from the environment.
  CURLcode configure(CURL* handle, const Request& request, const Target& target,
                     curl_slist* headers, Transfer& transfer, char* error_text) const {
    CURLcode first_error = CURLE_OK;
    auto check = [&first_error](CURLcode code) {
      if (first_error == CURLE_OK) {
        first_error = code;
      }
    };
    check(curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_text));
    check(curl_easy_setopt(handle, CURLOPT_CURLU, target.url.get()));
    // Signals are process-wide; a library in a multi-threaded sidecar must not
    // use them for timeouts (the resolver here is threaded, so none are needed).
    check(curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L));
    check(curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https"));
    check(curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    // A redirect could carry signed query parameters to another host.
    check(curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L));
    check(curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                           toCurlMillis(options_.connect_timeout)));
    check(curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, toCurlMillis(options_.total_timeout)));
    check(curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L));
    check(curl_easy_setopt(handle, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
    const long verify = options_.verify_tls ? 1L : 0L;
    check(curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, verify));
    check(curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L));
    if (!options_.ca_file.empty()) {
      check(curl_easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075700
      // Read for every new connection, never from libcurl's CA store cache
      // (up to 24 h since 7.87): a CA file replaced by a Secret or ConfigMap
      // update is trusted from the next connection on. It is a few
      // certificates, read only when a connection is made.
      check(curl_easy_setopt(handle, CURLOPT_CA_CACHE_TIMEOUT, 0L));
#endif
    }
    check(curl_easy_setopt(handle, CURLOPT_USERAGENT, options_.user_agent.c_str()));
    check(curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers));
    check(curl_easy_setopt(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));
    // Rejects an announced Content-Length over the cap before reading a byte;
    // the write callback enforces it for chunked bodies.
    check(curl_easy_setopt(
        handle, CURLOPT_MAXFILESIZE_LARGE,
        static_cast<curl_off_t>(std::min<size_t>(options_.max_response_bytes,
                                                 std::numeric_limits<curl_off_t>::max()))));
    check(curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &onBody));
    check(curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer));
    check(curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &onHeader));
    check(curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer));

    const std::string& method = request.method;
    if (method == "HEAD") {
      check(curl_easy_setopt(handle, CURLOPT_NOBODY, 1L));
    } else if (request.body.empty() && method != "POST" && method != "PUT" && method != "PATCH") {
      check(curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L));
      if (method != "GET") {
        check(curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str()));
      }
    } else {
      // Not copied: the request outlives the transfer.
      check(curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data()));
      check(curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size())));
      if (method != "POST") {
        check(curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str()));
      }
    }
    return first_error;
  }

  // The most recently used handle first: its connection is the likeliest to
  // still be open, so sequential callers keep using one connection.
  EasyHandle acquire() {
    {
      MutexLock lock(&mutex_);
      if (!idle_.empty()) {
        EasyHandle handle = std::move(idle_.back());
        idle_.pop_back();
        return handle;
      }
    }
    return EasyHandle(curl_easy_init());
  }

  // curl_easy_reset drops every option (and so every pointer into this
  // transfer's stack) but keeps live connections, DNS and TLS session caches.
  void release(EasyHandle handle) {
    curl_easy_reset(handle.get());
    {
      MutexLock lock(&mutex_);
      if (idle_.size() < options_.max_idle_handles) {
        idle_.push_back(std::move(handle));
        return;
      }
    }
    // Over the cap, the handle is closed here, unlocked: closing its
    // connections writes to sockets.
  }

  const CurlClientOptions options_;
  std::atomic<uint64_t> connections_opened_{0};
  Mutex mutex_;
  std::vector<EasyHandle> idle_ ABSL_GUARDED_BY(mutex_);
};

CurlClient::CurlClient(const CurlClientOptions& options) : impl_(std::make_unique<Impl>(options)) {}

CurlClient::~CurlClient() = default;

absl::StatusOr<Response> CurlClient::send(const Request& request) { return impl_->send(request); }

uint64_t CurlClient::connectionsOpened() const { return impl_->connectionsOpened(); }

ClientPtr makeCurlClient(const CurlClientOptions& options) {
  return std::make_unique<CurlClient>(options);
}

}  // namespace credsync::http
