#pragma once

#include <stdio.h>
#include <stdlib.h>

#include <functional>
#include <string>

#include "sidecar/cli/cli.h"

namespace credsync::testing {

// What a command printed and returned.
struct Result {
  int code;
  std::string out;
  std::string err;
};

// Runs `command` with Io writing to memory, and returns what it wrote.
inline Result captureRun(const std::function<int(cli::Io)>& command) {
  char* out_buffer = nullptr;
  char* err_buffer = nullptr;
  size_t out_size = 0;
  size_t err_size = 0;
  FILE* out = open_memstream(&out_buffer, &out_size);
  FILE* err = open_memstream(&err_buffer, &err_size);
  const int code = command(cli::Io{out, err});
  fclose(out);
  fclose(err);
  Result result{code, std::string(out_buffer, out_size), std::string(err_buffer, err_size)};
  free(out_buffer);
  free(err_buffer);
  return result;
}

}  // namespace credsync::testing
