#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace credsync::testing {

// A fresh directory under the test temp dir, removed with everything in it
// when the object goes. Short enough for Unix socket paths (108 bytes) as
// long as the test temp dir is.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) : path_(::testing::TempDir() + prefix + ".XXXXXX") {
    if (mkdtemp(path_.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << path_ << " failed";
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace credsync::testing
