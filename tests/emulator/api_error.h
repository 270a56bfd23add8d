#pragma once

#include <string>

namespace credsync::emulator {

// An error as the POP gateway reports it: the HTTP status, the error code
// ("Forbidden.ResourceNotFound") and its message.
struct ApiError {
  int http_status = 400;
  std::string code;
  std::string message;
};

inline ApiError missingParameter(const std::string& name) {
  return {400, "MissingParameter",
          "The input parameter \"" + name +
              "\" that is mandatory for processing this request is not supplied."};
}

inline ApiError invalidParameter(const std::string& name, const std::string& why) {
  return {400, "InvalidParameter." + name, "The parameter " + name + " is invalid: " + why};
}

}  // namespace credsync::emulator
