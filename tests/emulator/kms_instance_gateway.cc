#include "tests/emulator/kms_instance_gateway.h"

#include <algorithm>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "alibaba/dkms/api.pb.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/client_key_crypto.h"
#include "tests/emulator/hashing.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {
namespace {

constexpr absl::Duration kMaxSkew = absl::Minutes(15);

const std::string* firstHeader(const GatewayRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? nullptr : &it->second;
}

// The request's Date, RFC 1123 as the SDKs send it ("Tue, 24 Nov 2026
// 17:00:00 GMT"); nullopt if it is not one.
std::optional<absl::Time> parseHttpDate(const std::string& text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", text, absl::UTCTimeZone(), &time, &error)) {
    return std::nullopt;
  }
  return time;
}

// A received value made fit to echo in an ErrorMessage: proto3 strings must
// be UTF-8, and a message that is not would make the client's decoder
// reject the whole Error (Go's proto.Unmarshal does). Each byte that does
// not start a well-formed sequence becomes U+FFFD.
std::string echoable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t min = 0;
    if (byte < 0x80) {
      length = 1;
    } else if ((byte & 0xe0) == 0xc0) {
      length = 2, min = 0x80;
    } else if ((byte & 0xf0) == 0xe0) {
      length = 3, min = 0x800;
    } else if ((byte & 0xf8) == 0xf0) {
      length = 4, min = 0x10000;
    }
    bool valid = length > 0 && i + length <= text.size();
    uint32_t code_point = length == 1 ? byte : byte & (0x7f >> length);
    for (size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      valid = (next & 0xc0) == 0x80;
      code_point = (code_point << 6) | (next & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    valid = valid && code_point >= min && code_point <= 0x10ffff &&
            !(code_point >= 0xd800 && code_point <= 0xdfff);
    if (valid) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// readSecretValue speaks the OpenAPI's codes; the instance API words some of
// them differently (research §6).
GatewayAnswer fromOpenApiError(const ApiError& error, const std::string& secret_name) {
  if (error.code == "Forbidden.NoPermission") {
    return KmsInstanceGateway::error(403, error.code,
                                     absl::StrCat("This operation for \"", echoable(secret_name),
                                                  "\" is forbidden by permission system."));
  }
  if (error.code == "MissingParameter") {
    return KmsInstanceGateway::error(400, "MissingParameter",
                                     "Parameter SecretName does not exist in http header or body.");
  }
  if (error.code == "InvalidParameter") {
    return KmsInstanceGateway::error(400, "InvalidParameter",
                                     "The specified parameter is not valid.");
  }
  // Forbidden.ResourceNotFound/404 and anything else keep their words; the
  // not-found answer is a guess (research §6).
  return KmsInstanceGateway::error(error.http_status, error.code, error.message);
}

}  // namespace

KmsInstanceGateway::KmsInstanceGateway(std::string instance_id, World& world,
                                       const ClientKeyRegistry& keys)
    : instance_id_(std::move(instance_id)), world_(world), keys_(keys) {}

GatewayAnswer KmsInstanceGateway::error(int status, const std::string& code,
                                        const std::string& message) {
  alibaba::dkms::Error error;
  error.set_statuscode(status);
  error.set_errorcode(code);
  error.set_errormessage(message);
  error.set_requestid(crypto::randomUuid());
  return GatewayAnswer{status, error.SerializeAsString(), code};
}

GatewayAnswer KmsInstanceGateway::handle(const GatewayRequest& request) const {
  // Routing: the API lives at POST / only. What a real gateway answers
  // elsewhere is not documented; 404 and 405 with an Error body are guesses.
  if (request.path != "/") return error(404, "NotFound", "The requested resource is not found.");
  if (request.method != "POST") return error(405, "MethodNotAllowed", "Method Not Allowed.");
  if (request.body.size() > kGatewayMaxBodyBytes) {
    // The documented 413 has no error code (research §6); counted under one.
    GatewayAnswer answer = error(413, "", "Request Entity Too Large.");
    answer.code = "RequestEntityTooLarge";
    return answer;
  }

  const std::string* version = firstHeader(request, "x-kms-apiversion");
  if (version == nullptr || *version != kDkmsApiVersion) {
    return error(
        400, "InvalidApiVersion",
        absl::StrCat("The ApiVersion \"", echoable(version ? *version : ""), "\" is invalid."));
  }
  const std::string* api_name = firstHeader(request, "x-kms-apiname");
  if (api_name == nullptr || *api_name != "GetSecretValue") {
    return error(
        400, "InvalidApiName",
        absl::StrCat("The ApiName \"", echoable(api_name ? *api_name : ""), "\" is invalid."));
  }
  const std::string* method = firstHeader(request, "x-kms-signaturemethod");
  if (method == nullptr || method->empty()) {
    return error(400, "InvalidParam", "The Param x-kms-signaturemethod is invalid.");
  }
  if (*method != "RSA_PKCS1_SHA_256") {
    return error(400, "InvalidParam",
                 absl::StrCat("The Param x-kms-signaturemethod is invalid. message:\"",
                              echoable(*method), "\"."));
  }
  const std::string* key_id = firstHeader(request, "x-kms-acccesskeyid");
  if (key_id == nullptr || key_id->empty()) {
    return error(400, "MissingParameter",
                 "Parameter x-kms-acccesskeyid does not exist in http header or body.");
  }
  const std::string* date = firstHeader(request, "date");
  const std::optional<absl::Time> sent = date ? parseHttpDate(*date) : std::nullopt;
  if (!sent) return error(400, "InvalidParam", "The Param Date is invalid.");
  const absl::Time now = world_.now();
  if (absl::AbsDuration(now - *sent) > kMaxSkew) {
    return error(400, "RequestTimeTooSkewed",
                 "Request time exceeds server time more than 15 minutes.");
  }
  const std::string* content_type = firstHeader(request, "content-type");
  if (content_type == nullptr || *content_type != "application/x-protobuf") {
    return error(415, "InvalidContentType",
                 absl::StrCat("Content-Type \"", echoable(content_type ? *content_type : ""),
                              "\" is unsupported."));
  }
  // The SDKs send the hash in upper case; the comparison is exact. The
  // message is the one the Java SDK retries on; the code is a guess.
  const std::string* content_sha256 = firstHeader(request, "content-sha256");
  if (content_sha256 == nullptr ||
      *content_sha256 != absl::AsciiStrToUpper(hashing::sha256Hex(request.body))) {
    return error(400, "InvalidParam", "The Param Content-SHA256 is invalid.");
  }
  const std::string* authorization = firstHeader(request, "authorization");
  std::string signature_b64;
  if (authorization != nullptr) {
    // Every SDK sends "Bearer"; the docs write "TOKEN" (research §2).
    for (const char* scheme : {"Bearer ", "TOKEN "}) {
      if (absl::StartsWith(*authorization, scheme)) {
        signature_b64 = authorization->substr(std::char_traits<char>::length(scheme));
      }
    }
  }
  const std::optional<std::string> signature = hashing::base64Decode(signature_b64);
  if (signature_b64.empty() || !signature) {
    return error(400, "InvalidParam", "The Param Authorization is invalid.");
  }

  // An unknown key, a disabled one and one of another instance's access
  // point all get the documented unknown-key answer: how a real gateway
  // words the last two is not documented (research §11).
  const std::optional<ClientKey> key = keys_.find(*key_id);
  const bool usable =
      key && key->state == KeyState::kActive &&
      (key->instances.empty() || std::find(key->instances.begin(), key->instances.end(),
                                           instance_id_) != key->instances.end());
  if (!usable) {
    return error(404, "Unauthorized",
                 absl::StrCat("The AccessKey ID \"", echoable(*key_id),
                              "\" does not exist in our records."));
  }
  const std::string string_to_sign = dkmsStringToSign(request.method, request.headers);
  if (!dkmsVerify(key->public_key_pem, string_to_sign, *signature)) {
    return error(401, "SignatureNotMatch", "Signature is not matched.");
  }

  alibaba::dkms::GetSecretValueRequest parsed;
  if (!parsed.ParseFromString(request.body)) {
    return error(400, "InvalidParameter", "The specified parameter is not valid.");
  }
  SecretValueQuery query;
  query.secret_name = parsed.secretname();
  query.version_stage = parsed.versionstage();
  query.version_id = parsed.versionid();
  query.fetch_extended_config = parsed.fetchextendedconfig();
  auto read = readSecretValue(world_, key->secrets, query);
  if (auto* failure = std::get_if<ApiError>(&read)) {
    return fromOpenApiError(*failure, query.secret_name);
  }
  const SecretValue& value = std::get<SecretValue>(read);
  alibaba::dkms::GetSecretValueResponse response;
  response.set_secretname(value.secret_name);
  response.set_secrettype(value.secret_type);
  response.set_secretdata(value.secret_data);
  response.set_secretdatatype(value.secret_data_type);
  for (const std::string& stage : value.version_stages) response.add_versionstages(stage);
  response.set_versionid(value.version_id);
  response.set_createtime(value.create_time);
  response.set_requestid(crypto::randomUuid());
  response.set_lastrotationdate(value.last_rotation_date);
  response.set_nextrotationdate(value.next_rotation_date);
  response.set_extendedconfig(value.extended_config);
  response.set_automaticrotation(value.automatic_rotation);
  response.set_rotationinterval(value.rotation_interval);
  GatewayAnswer answer;
  answer.body = response.SerializeAsString();
  return answer;
}

}  // namespace credsync::emulator
